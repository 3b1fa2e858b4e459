// Preload (`node --import ./test/helpers/shift-clock.mjs`): plays a host whose clock is wrong by
// GEOSESSION_CLOCK_OFFSET_MS. Date.now() and `new Date()` are shifted; intervals between two readings
// are not, so timers and timeouts behave as on any host.
const offset = Number(process.env.GEOSESSION_CLOCK_OFFSET_MS ?? 0);
const RealDate = Date;
const realNow = RealDate.now.bind(RealDate);

class ShiftedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(realNow() + offset);
    else super(...args);
  }

  static now() {
    return realNow() + offset;
  }
}

globalThis.Date = ShiftedDate;
