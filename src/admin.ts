// The `geosession/admin` entry point: the library calls behind the `geosession` command (inspect,
// migrate, verify, repair, resync, region removal), for apps and scripts that operate regions
// themselves. Each helper adds its exports here.

export type { Difference, DifferenceKind, RegionView } from './admin/difference.js';
export {
  type AdminRegion,
  type InspectOptions,
  inspectSession,
  type RegionSessionView,
  type SessionInspection,
} from './admin/inspect.js';
export { maskSessionId } from './admin/mask-id.js';
export {
  escapeGlob,
  MIGRATE_STATE_FIELD,
  type MigrateCounts,
  type MigrateOptions,
  type MigrateProgress,
  type MigrateReport,
  migrateKeyspace,
} from './admin/migrate.js';
export {
  planRegionRemoval,
  type RedisRemovalStep,
  type RegionRemovalOptions,
  removeRegionFromRedis,
} from './admin/remove-region.js';
export { type RepairAction, type RepairOptions, type RepairResult, repairRegions } from './admin/repair.js';
export {
  type ResyncOptions,
  type ResyncPhase,
  type ResyncProgress,
  type ResyncResult,
  resyncRegion,
} from './admin/resync.js';
export {
  applySessionStates,
  type CopyCounts,
  copySessionStates,
  type RegionRef,
  readSessionStates,
  type SessionState,
  type SessionStateOptions,
} from './admin/session-state.js';
export { type ReadStatusOptions, type RegionStatus, readStatus, type StatusProcess } from './admin/status.js';
export { type VerifyOptions, type VerifyProgress, type VerifyResult, verifyRegions } from './admin/verify.js';
export { ResyncError } from './errors.js';
