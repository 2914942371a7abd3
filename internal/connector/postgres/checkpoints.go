package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/backbone-etl/backbone/internal/connector"
)

// The sink keeps the checkpoints of the pipelines that write into a
// database in that database, in the schema of the table it writes, and
// updates them in the transaction that stages the rows:
//
//	backbone_meta(key text PRIMARY KEY, value text NOT NULL)
//	    ('checkpoints_version', '1')
//	backbone_checkpoints(pipeline text, task text, pos bytea, done boolean,
//	    fingerprint text, updated_at timestamptz, PRIMARY KEY (pipeline, task))
//
// Checkpoints that carry a newer version, or no version at all, are
// refused: they are never taken for a first run.
const (
	checkpointsVersion    = 1
	checkpointsVersionKey = "checkpoints_version"
	metaTable             = "backbone_meta"
	checkpointsTable      = "backbone_checkpoints"
)

// ensureCheckpointTables creates the checkpoint tables when missing and
// checks the version of existing ones, in a transaction of its own under
// an advisory lock so that concurrent sinks do not race to create them.
func ensureCheckpointTables(ctx context.Context, c *pgconn.PgConn, schema string) (err error) {
	if err := exec(ctx, c, "BEGIN; SELECT pg_advisory_xact_lock(7206194431204371361)"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			exec(context.WithoutCancel(ctx), c, "ROLLBACK") //nolint:errcheck // the first error is the one to report
			return
		}
		err = exec(ctx, c, "COMMIT")
	}()
	meta, cps, err := checkpointTablesExist(ctx, c, schema)
	if err != nil {
		return err
	}
	if cps {
		if err := checkVersion(ctx, c, schema, meta); err != nil {
			return err
		}
	}
	return exec(ctx, c, `CREATE TABLE IF NOT EXISTS `+qualified(schema, metaTable)+` (
	key   text PRIMARY KEY,
	value text NOT NULL
);
INSERT INTO `+qualified(schema, metaTable)+` (key, value) VALUES ('`+checkpointsVersionKey+`', '`+strconv.Itoa(checkpointsVersion)+`') ON CONFLICT (key) DO NOTHING;
CREATE TABLE IF NOT EXISTS `+qualified(schema, checkpointsTable)+` (
	pipeline    text NOT NULL,
	task        text NOT NULL,
	pos         bytea,
	done        boolean NOT NULL DEFAULT false,
	fingerprint text NOT NULL DEFAULT '',
	updated_at  timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (pipeline, task)
)`)
}

func checkpointTablesExist(ctx context.Context, c *pgconn.PgConn, schema string) (meta, cps bool, err error) {
	rows, err := query(ctx, c, `SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL`,
		qualified(schema, metaTable), qualified(schema, checkpointsTable))
	if err != nil {
		return false, false, err
	}
	return text(rows[0][0]) == "t", text(rows[0][1]) == "t", nil
}

var errNoVersion = errors.New("table backbone_checkpoints exists without its version in backbone_meta: refusing checkpoints of unknown format")

// checkVersion refuses checkpoints written by a newer backbone, or stored
// without a version.
func checkVersion(ctx context.Context, c *pgconn.PgConn, schema string, meta bool) error {
	if !meta {
		return errNoVersion
	}
	rows, err := query(ctx, c, `SELECT value FROM `+qualified(schema, metaTable)+` WHERE key = $1`, checkpointsVersionKey)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return errNoVersion
	}
	v := text(rows[0][0])
	n, err := strconv.Atoi(v)
	switch {
	case err != nil:
		return fmt.Errorf("backbone_meta: checkpoints version %q is not a number: refusing checkpoints of unknown format", v)
	case n > checkpointsVersion:
		return fmt.Errorf("checkpoints were written by a newer backbone (version %d; this one reads version %d)", n, checkpointsVersion)
	case n < 1:
		return fmt.Errorf("backbone_meta: checkpoints version %d is not valid", n)
	}
	return nil
}

// upsertCheckpointSQL stores one checkpoint.
func upsertCheckpointSQL(schema string) string {
	return `INSERT INTO ` + qualified(schema, checkpointsTable) + ` (pipeline, task, pos, done, fingerprint, updated_at)
VALUES ($1, $2, $3, $4, $5, now())
ON CONFLICT (pipeline, task) DO UPDATE SET
	pos = excluded.pos, done = excluded.done, fingerprint = excluded.fingerprint, updated_at = excluded.updated_at`
}

// checkpointParams are the parameters of upsertCheckpointSQL: text,
// except pos in binary.
func checkpointParams(pipeline string, cp connector.Checkpoint) ([][]byte, []int16) {
	var pos []byte
	if cp.Pos != nil {
		pos = append([]byte{}, cp.Pos...)
	}
	return [][]byte{[]byte(pipeline), []byte(cp.Task), pos, []byte(strconv.FormatBool(cp.Done)), []byte(cp.Fingerprint)},
		[]int16{0, 0, 1, 0, 0}
}

var checkpointOIDs = []uint32{oidText, oidText, oidBytea, oidBool, oidText}

// loadCheckpoints reads the checkpoints of a pipeline. Missing tables mean
// none.
func loadCheckpoints(ctx context.Context, c *pgconn.PgConn, schema, pipeline string) (map[string]connector.Checkpoint, error) {
	out := map[string]connector.Checkpoint{}
	meta, cps, err := checkpointTablesExist(ctx, c, schema)
	if err != nil || !cps {
		return out, err
	}
	if err := checkVersion(ctx, c, schema, meta); err != nil {
		return nil, err
	}
	res := c.ExecParams(ctx, `SELECT task, pos, done, fingerprint FROM `+qualified(schema, checkpointsTable)+` WHERE pipeline = $1`,
		[][]byte{[]byte(pipeline)}, []uint32{oidText}, nil, []int16{0, 1, 0, 0}).Read()
	if res.Err != nil {
		return nil, res.Err
	}
	for _, r := range res.Rows {
		cp := connector.Checkpoint{Task: text(r[0]), Done: text(r[2]) == "t", Fingerprint: text(r[3])}
		if r[1] != nil {
			cp.Pos = append([]byte{}, r[1]...)
		}
		out[cp.Task] = cp
	}
	return out, nil
}
