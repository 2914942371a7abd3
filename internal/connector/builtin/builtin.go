// Package builtin registers every built-in component. It is the one list of
// them: a component not named here does not exist for pipelines.
//
//	r := connector.NewRegistry()
//	builtin.Register(r)
package builtin

import (
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/file"
	"github.com/backbone-etl/backbone/internal/connector/httpc"
	"github.com/backbone-etl/backbone/internal/connector/mysql"
	"github.com/backbone-etl/backbone/internal/connector/natsjs"
	"github.com/backbone-etl/backbone/internal/connector/postgres"
	"github.com/backbone-etl/backbone/internal/connector/rabbitmq"
	"github.com/backbone-etl/backbone/internal/connector/redis"
	"github.com/backbone-etl/backbone/internal/connector/sqlite"
	"github.com/backbone-etl/backbone/internal/step"
)

// Register adds the built-in sources, steps, lookups and sinks to r.
func Register(r *connector.Registry) {
	file.Register(r)
	httpc.Register(r)
	mysql.Register(r)
	natsjs.Register(r)
	postgres.Register(r)
	rabbitmq.Register(r)
	redis.Register(r)
	sqlite.Register(r)
	step.Register(r)
}
