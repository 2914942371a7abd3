package sqlkit

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
)

// Conn is a sink's one connection to its database, driven through the
// driver's own prepared statements (sql.Conn.Raw), which spares
// database/sql's conversion of every argument on the hot path. After an
// error that may have left it mid-statement, its owner closes it, and the
// next use connects again.
type Conn struct {
	// MaxStmts bounds the prepared statements kept (0: no bound): when it
	// is reached, all but Keep are closed.
	MaxStmts int
	Keep     string
	// Discard drops the driver connection at Close rather than hand it
	// back to the pool: a failure may have left it mid-transaction.
	Discard bool

	db    *sql.DB
	conn  *sql.Conn
	dc    driver.Conn // conn's driver connection, inside Raw only
	stmts map[string]driver.Stmt
	nv    []driver.NamedValue
}

// NewConn returns a Conn that connects to db when first used.
func NewConn(db *sql.DB) *Conn {
	return &Conn{db: db, stmts: map[string]driver.Stmt{}}
}

// SQL returns the connection, connecting first when there is none.
func (c *Conn) SQL(ctx context.Context) (*sql.Conn, error) {
	if c.conn == nil {
		conn, err := c.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		c.conn = conn
	}
	return c.conn, nil
}

// Connected reports whether c holds a connection.
func (c *Conn) Connected() bool { return c.conn != nil }

// Raw runs f with the driver connection, which Prepared and the Exec
// methods use, connecting first when there is none.
func (c *Conn) Raw(ctx context.Context, f func() error) error {
	conn, err := c.SQL(ctx)
	if err != nil {
		return err
	}
	return conn.Raw(func(dc any) error {
		d, ok := dc.(driver.Conn)
		if !ok {
			return fmt.Errorf("driver connection is a %T", dc)
		}
		c.dc = d
		defer func() { c.dc = nil }()
		return f()
	})
}

// Prepared returns the statement q on the driver connection, preparing it
// once. It runs inside Raw.
func (c *Conn) Prepared(ctx context.Context, q string) (driver.Stmt, error) {
	if st, ok := c.stmts[q]; ok {
		return st, nil
	}
	if c.MaxStmts > 0 && len(c.stmts) >= c.MaxStmts {
		for k, st := range c.stmts {
			if k != c.Keep {
				st.Close()
				delete(c.stmts, k)
			}
		}
	}
	var st driver.Stmt
	var err error
	if p, ok := c.dc.(driver.ConnPrepareContext); ok {
		st, err = p.PrepareContext(ctx, q)
	} else {
		st, err = c.dc.Prepare(q)
	}
	if err != nil {
		return nil, err
	}
	c.stmts[q] = st
	return st, nil
}

// Exec runs the prepared statement q with args. It runs inside Raw.
func (c *Conn) Exec(ctx context.Context, q string, args ...any) error {
	_, err := c.exec(ctx, q, args)
	return err
}

// ExecN is Exec that returns the number of rows the statement changed.
func (c *Conn) ExecN(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := c.exec(ctx, q, args)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (c *Conn) exec(ctx context.Context, q string, args []any) (driver.Result, error) {
	st, err := c.Prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	ex, ok := st.(driver.StmtExecContext)
	if !ok {
		return nil, fmt.Errorf("driver statement is a %T", st)
	}
	nv := c.nv[:0]
	for i, a := range args {
		nv = append(nv, driver.NamedValue{Ordinal: i + 1, Value: a})
	}
	c.nv = nv
	res, err := ex.ExecContext(ctx, nv)
	clear(nv) // do not keep the values alive
	return res, err
}

// ExecText runs a statement without arguments unprepared (the text
// protocol). It runs inside Raw.
func (c *Conn) ExecText(ctx context.Context, q string) error {
	ex, ok := c.dc.(driver.ExecerContext)
	if !ok {
		return fmt.Errorf("driver connection is a %T", c.dc)
	}
	_, err := ex.ExecContext(ctx, q, nil)
	return err
}

// Close closes the prepared statements and the connection; the next use
// connects again.
func (c *Conn) Close() {
	if c.conn == nil {
		return
	}
	c.conn.Raw(func(any) error { //nolint:errcheck // closing
		for _, st := range c.stmts {
			st.Close()
		}
		if c.Discard {
			return driver.ErrBadConn // discard the driver connection
		}
		return nil
	})
	// The statements belong to the connection, which may have been closed
	// already (and Raw not run): the server frees them with it.
	clear(c.stmts)
	c.conn.Close()
	c.conn = nil
}
