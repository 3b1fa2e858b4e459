// The `geosession/admin` entry point: the library calls behind the `geosession` command (inspect,
// migrate, verify, repair, resync, region removal), for apps and scripts that operate regions
// themselves. Each helper adds its exports here.

export { maskSessionId } from './admin/mask-id.js';
