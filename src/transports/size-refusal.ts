/**
 * A broker's or Redis's refusal of a message for its size: the one deterministic publish failure (the
 * same message is refused again however often it is sent). Recognised here and nowhere else:
 *
 * - NATS: the client refuses a payload over the server's `max_payload` (`'payload' max_payload size
 *   exceeded`), the server a `Maximum Payload Violation`, JetStream a message over the stream's
 *   `max_msg_size` (API error 10054, "message size exceeds maximum allowed");
 * - RabbitMQ: the channel is closed with `PRECONDITION_FAILED - message size <n> is larger than
 *   configured max size <m>` (`max_message_size`, 128 MiB by default);
 * - Redis: `Protocol error: invalid bulk length` (an argument over `proto-max-bulk-len`, 512 MB by
 *   default).
 */

/** What a size refusal says. */
export interface SizeRefusal {
  /** The size of the refused message, when the refusal names it (RabbitMQ does). */
  readonly bytes: number | undefined;
}

const RABBIT = /message size (\d+) is larger than configured max size/i;
const NATS = /max_payload|maximum payload|message size exceeds maximum/i;
const REDIS = /invalid bulk length/i;
/** JetStream's "message size exceeds maximum allowed". */
const JS_MESSAGE_TOO_LARGE = 10054;

/** The size refusal `error` (or one of its causes) is, or `undefined` for any other failure. */
export function sizeRefusal(error: unknown): SizeRefusal | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const message = current.message;
    const rabbit = RABBIT.exec(message);
    if (rabbit) return { bytes: Number(rabbit[1]) };
    const code = (current as { code?: unknown }).code;
    if (NATS.test(message) || REDIS.test(message) || (code === JS_MESSAGE_TOO_LARGE && isApiError(current))) {
      return { bytes: undefined };
    }
    current = current.cause;
  }
  return undefined;
}

function isApiError(error: Error): boolean {
  return typeof (error as { apiError?: unknown }).apiError === 'function';
}
