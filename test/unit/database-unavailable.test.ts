// Which database errors are a 503 (the database cannot serve this now: try again) rather than a 500.
// A PostgreSQL that PANICs (here, its WAL file could not be written: Operation not permitted) sends
// the statement in flight its PANIC before it restarts every session: the request was answered 500,
// a bug by jetpost's own rule, where the database is what failed and a retry succeeds once it is back.
import { expect } from 'chai';

import { isDatabaseUnavailable } from '../../src/domain/errors.js';

/** An error as pg gives it for an ErrorResponse: the message, the SQLSTATE, the severity. */
function serverError(message: string, code: string, severity: string): Error {
  return Object.assign(new Error(message), { code, severity });
}

describe('isDatabaseUnavailable', () => {
  it('when the server PANICs under a statement, whatever its SQLSTATE, then the database is unavailable (503)', () => {
    const panic = serverError(
      'could not write to log file "000000010000000000000001" at offset 5980160, length 8192: Operation not permitted',
      '42501',
      'PANIC',
    );
    expect(isDatabaseUnavailable(panic)).to.equal(true);
  });

  it('when the disk under the database fails to read or write (58030 io_error), then the database is unavailable (503)', () => {
    expect(isDatabaseUnavailable(serverError('could not read block 0 in file "base/5/16436": Input/output error', '58030', 'ERROR'))).to.equal(true);
  });

  it('when a statement is refused for what it asks (42501 at severity ERROR, a constraint), then it is not', () => {
    expect(isDatabaseUnavailable(serverError('permission denied for table apps', '42501', 'ERROR'))).to.equal(false);
    expect(isDatabaseUnavailable(serverError('duplicate key value violates unique constraint', '23505', 'ERROR'))).to.equal(false);
  });
});
