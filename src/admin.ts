// The `geosession/admin` entry point: the library calls behind the `geosession` command (inspect,
// migrate, verify, repair, resync, region removal), for apps and scripts that operate regions
// themselves. Each helper adds its exports here.

export { maskSessionId } from './admin/mask-id.js';
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
export { ResyncError } from './errors.js';
