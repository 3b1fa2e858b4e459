/**
 * The one classifier of failures (src/failures/reply-errors.ts): every transient Redis error reply and
 * connection failure is retried, only what the same input reproduces is dead-lettered. Reply errors are
 * ioredis's own `ReplyError` with the messages Redis 7 sends (a script's error keeps the code of the
 * command that failed inside it).
 */
import { ReplyError } from 'ioredis';
import { MaxRetriesPerRequestError } from 'ioredis/built/errors/index.js';
import { describe, expect, it } from 'vitest';
import {
  ClosedError,
  EventError,
  RedisCommandError,
  SealError,
  TimeoutError,
  TransientError,
} from '../../src/errors.js';
import {
  asTransient,
  classifyFailure,
  isBusyGroup,
  isDeterministicFailure,
  isMissingStream,
  isNoGroup,
  isNoScript,
  replyCode,
} from '../../src/failures/reply-errors.js';

const reply = (message: string) => new ReplyError(message);

const TRANSIENT_REPLIES: Record<string, string> = {
  OOM: "OOM command not allowed when used memory > 'maxmemory'. script: 71e6319f, on @user_script:1.",
  BUSY: 'BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.',
  READONLY: "READONLY You can't write against a read only replica. script: 1f2e, on @user_script:12.",
  LOADING: 'LOADING Redis is loading the dataset in memory',
  MASTERDOWN: 'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no.',
  TRYAGAIN: 'TRYAGAIN Multiple keys request during rehashing of slot',
  CLUSTERDOWN: 'CLUSTERDOWN The cluster is down',
  NOSCRIPT: 'NOSCRIPT No matching script. Please use EVAL.',
  NOREPLICAS: 'NOREPLICAS Not enough good replicas to write.',
  MISCONF:
    'MISCONF Redis is configured to save RDB snapshots, but it is currently not able to persist on disk.',
  MOVED: 'MOVED 3999 127.0.0.1:6381',
  ASK: 'ASK 3999 127.0.0.1:6381',
  NOAUTH: 'NOAUTH Authentication required.',
  NOPERM: "NOPERM User geo has no permissions to run the 'evalsha' command",
  UNBLOCKED: 'UNBLOCKED client unblocked via CLIENT UNBLOCK',
};

describe('classifyFailure', () => {
  it('a MULTI refused at EXEC (EXECABORT) is classified by the queued command that failed', () => {
    const aborted = (...previous: Error[]) =>
      Object.assign(reply('EXECABORT Transaction discarded because of previous errors.'), {
        previousErrors: previous,
      });
    expect(classifyFailure(aborted(reply(TRANSIENT_REPLIES.OOM as string)))).toEqual({
      kind: 'transient',
      code: 'OOM',
    });
    expect(classifyFailure(aborted(reply("ERR unknown command 'hsett'")))).toEqual({
      kind: 'deterministic',
      code: 'ERR',
    });
    expect(classifyFailure(aborted())).toEqual({ kind: 'deterministic', code: 'EXECABORT' });
  });

  for (const [code, message] of Object.entries(TRANSIENT_REPLIES)) {
    it(`${code} is transient`, () => {
      expect(classifyFailure(reply(message))).toEqual({ kind: 'transient', code });
      expect(isDeterministicFailure(reply(message))).toBe(false);
      // Wrapped by the store's command layer: classified by what it wraps.
      expect(classifyFailure(new RedisCommandError('apply', reply(message)))).toEqual({
        kind: 'transient',
        code,
      });
    });
  }

  it('a lost, refused or reset connection is transient', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    for (const error of [
      reset,
      refused,
      new Error('Connection is closed.'),
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
      new Error('Command timed out'),
      new MaxRetriesPerRequestError(1),
    ]) {
      expect(classifyFailure(error)).toEqual({ kind: 'transient', code: 'CONNECTION' });
    }
  });

  it('our timeouts, a closed store and unknown failures are transient (retried, never dropped)', () => {
    expect(classifyFailure(new TimeoutError('applying remote changes', 2000))).toEqual({
      kind: 'transient',
      code: 'TIMEOUT',
    });
    expect(classifyFailure(new ClosedError('the store')).kind).toBe('transient');
    expect(classifyFailure(new Error('something odd')).kind).toBe('transient');
    expect(classifyFailure('not even an error').kind).toBe('transient');
    expect(classifyFailure(new TransientError('OOM', 'x'))).toEqual({ kind: 'transient', code: 'OOM' });
  });

  it('what the same input reproduces is deterministic', () => {
    expect(classifyFailure(new EventError('malformed session change'))).toEqual({
      kind: 'deterministic',
      code: 'EVENT',
    });
    expect(classifyFailure(new SealError('tampered', 'x')).kind).toBe('transient'); // not an apply failure
    const deterministic = {
      WRONGTYPE:
        'WRONGTYPE Operation against a key holding the wrong kind of value script: ab, on @user_script:40.',
      ERR: 'ERR user_script:12: Script attempted to access nonexistent global variable',
      GEOREFUSED: 'GEOREFUSED a refusal of our own script (error_reply)',
      CROSSSLOT: "CROSSSLOT Keys in request don't hash to the same slot",
    };
    for (const [code, message] of Object.entries(deterministic)) {
      expect(classifyFailure(reply(message))).toEqual({ kind: 'deterministic', code });
      expect(isDeterministicFailure(reply(message))).toBe(true);
    }
    // A reply without a code of its own.
    expect(classifyFailure(reply('value is not an integer'))).toEqual({ kind: 'deterministic', code: 'ERR' });
  });

  it('BUSYGROUP is not BUSY', () => {
    const busyGroup = reply('BUSYGROUP Consumer Group name already exists');
    expect(isDeterministicFailure(busyGroup)).toBe(true);
    expect(isBusyGroup(busyGroup)).toBe(true);
    expect(isBusyGroup(reply(TRANSIENT_REPLIES.BUSY as string))).toBe(false);
  });
});

describe('the other predicates', () => {
  it('replyCode reads only error replies', () => {
    expect(replyCode(reply('OOM command not allowed'))).toBe('OOM');
    expect(replyCode(new Error('Connection is closed.'))).toBeUndefined();
    // Redis 6 wraps a failed command's error inside a script's.
    const wrapped =
      "ERR Error running script (call to f_71e6): @user_script:1: @user_script: 1: -OOM command not allowed when used memory > 'maxmemory'. ";
    expect(replyCode(reply(wrapped))).toBe('OOM');
    expect(classifyFailure(reply(wrapped)).kind).toBe('transient');
    expect(replyCode(new Error('XACK on s got no answer within 6000 ms'))).toBeUndefined();
    // ioredis-mock (the demo) raises plain errors that start with the code.
    expect(replyCode(new Error('NOSCRIPT No matching script. Please use EVAL.'))).toBe('NOSCRIPT');
  });

  it('isMissingStream: NOGROUP and XINFO on a missing key, nothing else', () => {
    expect(isMissingStream(reply('NOGROUP No such key s or consumer group g in XREADGROUP'))).toBe(true);
    expect(isMissingStream(reply('ERR no such key'))).toBe(true);
    expect(isMissingStream(reply(TRANSIENT_REPLIES.OOM as string))).toBe(false);
    expect(isMissingStream(new Error('no such key, but not a reply'))).toBe(false);
    expect(isNoGroup(reply('NOGROUP No such key'))).toBe(true);
    expect(isNoGroup(reply('ERR no such key'))).toBe(false);
  });

  it('isNoScript', () => {
    expect(isNoScript(reply(TRANSIENT_REPLIES.NOSCRIPT as string))).toBe(true);
    expect(isNoScript(reply('ERR unknown command'))).toBe(false);
  });

  it('asTransient keeps the reason and the cause', () => {
    const cause = reply(TRANSIENT_REPLIES.BUSY as string);
    const error = asTransient(cause);
    expect(error).toBeInstanceOf(TransientError);
    expect(error.code).toBe('ERR_GEOSESSION_TRANSIENT');
    expect(error.reason).toBe('BUSY');
    expect(error.cause).toBe(cause);
    expect(asTransient(error)).toBe(error);
  });
});
