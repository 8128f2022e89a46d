"""The layers of src/ as docs/architecture.md draws them: no cycle among the folders or the
modules, as scripts/folder-graph.sh reads them from the #include lines."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_include_graph_has_no_cycle():
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "folder-graph.sh")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no cycle among the folders or the modules" in r.stdout
    assert "http    -> api" not in r.stdout, r.stdout


def test_the_script_finds_a_cycle(tmp_path):
    """The check can fail: a copy of src/ where util/ includes an api/ header has a cycle."""
    import shutil
    root = tmp_path / "copy"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(os.path.join(ROOT, "scripts", "folder-graph.sh"), root / "scripts")
    shutil.copytree(os.path.join(ROOT, "src"), root / "src")
    with open(root / "src" / "util" / "buf.h", "a") as f:
        f.write('\n#include "api/app.h"\n')
    r = subprocess.run(["bash", str(root / "scripts" / "folder-graph.sh")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "a cycle among the folders" in r.stdout
