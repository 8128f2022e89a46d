/**
 * This file was generated from api/openapi.json by scripts/generate.mjs.
 * Do not make direct changes to the file: run `npm run generate`.
 */

/** Each operation's HTTP method and path template, by operationId. */
export const routes = {
  addTournamentAttempts: { method: "POST", path: "/v1/leaderboards/{board}/players/{player}/attempts" },
  batchReads: { method: "POST", path: "/v1/batch" },
  createBoard: { method: "POST", path: "/v1/leaderboards" },
  dashboard: { method: "GET", path: "/dashboard/" },
  dashboardFile: { method: "GET", path: "/dashboard/{file}" },
  dashboardRoot: { method: "GET", path: "/dashboard" },
  deleteBoard: { method: "DELETE", path: "/v1/leaderboards/{board}" },
  deletePlayer: { method: "DELETE", path: "/v1/leaderboards/{board}/players/{player}" },
  exportBoard: { method: "GET", path: "/v1/leaderboards/{board}/export" },
  exportPlayer: { method: "GET", path: "/v1/players/{player}/export" },
  getActivity: { method: "GET", path: "/v1/leaderboards/{board}/activity" },
  getAround: { method: "GET", path: "/v1/leaderboards/{board}/players/{player}/around" },
  getBoard: { method: "GET", path: "/v1/leaderboards/{board}" },
  getCohortEntries: { method: "GET", path: "/v1/leaderboards/{board}/cohorts/{cohort}/entries" },
  getEntries: { method: "GET", path: "/v1/leaderboards/{board}/entries" },
  getEvent: { method: "GET", path: "/v1/events/{id}" },
  getPlayer: { method: "GET", path: "/v1/leaderboards/{board}/players/{player}" },
  getPlayerCohort: { method: "GET", path: "/v1/leaderboards/{board}/players/{player}/cohort" },
  getPlayerStandings: { method: "GET", path: "/v1/players/{player}/standings" },
  getPlayers: { method: "GET", path: "/v1/leaderboards/{board}/players" },
  getRankOfScore: { method: "GET", path: "/v1/leaderboards/{board}/rank" },
  getStats: { method: "GET", path: "/v1/leaderboards/{board}/stats" },
  healthz: { method: "GET", path: "/healthz" },
  importBoard: { method: "POST", path: "/v1/leaderboards/{board}/import" },
  joinTournament: { method: "POST", path: "/v1/leaderboards/{board}/players/{player}/join" },
  listBoards: { method: "GET", path: "/v1/leaderboards" },
  listWindows: { method: "GET", path: "/v1/leaderboards/{board}/windows" },
  metrics: { method: "GET", path: "/metrics" },
  openapi: { method: "GET", path: "/v1/openapi.json" },
  patchBoard: { method: "PATCH", path: "/v1/leaderboards/{board}" },
  readyz: { method: "GET", path: "/readyz" },
  rebuildCache: { method: "POST", path: "/v1/admin/rebuild-cache" },
  refreshViews: { method: "POST", path: "/v1/admin/refresh" },
  submitScore: { method: "POST", path: "/v1/leaderboards/{board}/scores" },
  submitScores: { method: "POST", path: "/v1/scores:batch" },
  verifyTier: { method: "POST", path: "/v1/admin/verify-tier" },
} as const;
