package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

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

// upsertCheckpointSQL stores one checkpoint whatever the sink holds (a
// checkpoint without Guard).
func upsertCheckpointSQL(schema string) string {
	return `INSERT INTO ` + qualified(schema, checkpointsTable) + ` (pipeline, task, pos, done, fingerprint, updated_at)
VALUES ($1, $2, $3, $4, $5, now())
ON CONFLICT (pipeline, task) DO UPDATE SET
	pos = excluded.pos, done = excluded.done, fingerprint = excluded.fingerprint, updated_at = excluded.updated_at`
}

// checkpointParams are the parameters of upsertCheckpointSQL and the first
// ones of casCheckpointSQL: text,
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

// conflictMark is in the error casCheckpointSQL raises when the stored
// checkpoint is not the commit's base.
const conflictMark = "backbone checkpoint conflict "

// casCheckpointSQL stores one checkpoint if the stored one is still its
// base, and otherwise fails the statement, which aborts the transaction:
// with base, the stored row must hold base's pos ($6) and done ($7);
// without, there must be none. The cast of a text that is not a number
// raises the error at run time only (it depends on the subquery, so the
// planner cannot fold it).
func casCheckpointSQL(schema string, base bool) string {
	t := qualified(schema, checkpointsTable)
	stmt := `INSERT INTO ` + t + ` (pipeline, task, pos, done, fingerprint, updated_at)
	VALUES ($1, $2, $3, $4, $5, now())
	ON CONFLICT (pipeline, task) DO NOTHING RETURNING 1`
	if base {
		stmt = `UPDATE ` + t + ` SET pos = $3, done = $4, fingerprint = $5, updated_at = now()
	WHERE pipeline = $1 AND task = $2 AND coalesce(pos, '') = coalesce($6::bytea, '') AND done = $7 RETURNING 1`
	}
	return `WITH c AS (` + stmt + `)
SELECT CASE WHEN n = 1 THEN 1 ELSE CAST('` + conflictMark + `' || n AS int) END FROM (SELECT count(*) AS n FROM c) AS k`
}

// casCheckpointParams are the parameters of casCheckpointSQL.
func casCheckpointParams(pipeline string, cp connector.Checkpoint) ([][]byte, []uint32, []int16) {
	params, formats := checkpointParams(pipeline, cp)
	if cp.Base == nil {
		return params, checkpointOIDs, formats
	}
	var pos []byte
	if cp.Base.Pos != nil {
		pos = append([]byte{}, cp.Base.Pos...)
	}
	return append(params, pos, []byte(strconv.FormatBool(cp.Base.Done))),
		append(append([]uint32{}, checkpointOIDs...), oidBytea, oidBool),
		append(formats, 1, 0)
}

// isConflict reports whether err is casCheckpointSQL's refusal.
func isConflict(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "22P02" && strings.Contains(pe.Message, conflictMark)
}

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
