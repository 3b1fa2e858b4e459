// The `geosession/admin` entry point: the library calls behind the `geosession` command (inspect,
// migrate, verify, repair, resync, region removal), for apps and scripts that operate regions
// themselves. Each helper adds its exports here.

export type { Difference, DifferenceKind, RegionView } from './admin/difference.js';
export { maskSessionId } from './admin/mask-id.js';
export type { AdminRegion } from './admin/region-state.js';
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
export { type VerifyOptions, type VerifyProgress, type VerifyResult, verifyRegions } from './admin/verify.js';
export { ResyncError } from './errors.js';
