import { createMemoryTransport } from '../../src/transports/memory.js';
import { transportConformance } from './conformance.js';

transportConformance('memory', async () => {
  const transport = createMemoryTransport({ regions: ['hk', 'kr', 'us'] });
  return { regions: ['hk', 'kr', 'us'], transport: () => transport, cleanup: async () => {} };
});
