package config

import (
	"fmt"
	"os"
	"testing"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/builtin"
)

func TestZZProbe(t *testing.T) {
	r := connector.NewRegistry()
	builtin.Register(r)
	b, _ := os.ReadFile(os.Getenv("ZZ"))
	env := func(n string) (string, bool) { v, ok := os.LookupEnv("ZZ_" + n); return v, ok }
	p, err := Load("p.yaml", b, Options{Registry: r, Env: env})
	if err != nil {
		fmt.Printf("ERR(%T):\n%s\n", err, err)
		return
	}
	fmt.Printf("OK %+v\n", p.Settings)
	fmt.Printf("name=%s errors=%+v tz=%v fresh=%v\n", p.Name, p.Errors, p.Timezone, p.Freshness)
	for _, s := range p.Steps { fmt.Println(s.Label, s.Pos) }
	for _, s := range p.Lookups { fmt.Println(s.Label, s.Name, s.Pos) }
	fmt.Println(p.Source.Label, p.Source.Type, p.Source.Pos, p.Sink.Label, p.Sink.Pos)
}
