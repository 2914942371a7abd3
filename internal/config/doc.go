// Package config loads and checks pipeline files: strict YAML against the
// specs of the pipeline's own fields and of every component named, with
// ${ENV} interpolation and secrets kept out of messages.
//
//	r := connector.NewRegistry()
//	builtin.Register(r)
//	p, err := config.LoadFile("orders.yaml", config.Options{Registry: r})
//	// err is config.Errors: every problem at once, each "file:line:col: message"
//
// Invariants:
//
//   - Load never stops at the first problem: it returns every error of the
//     file, sorted by line and column, or a checked *Pipeline, never both;
//
//   - interpolation happens after parsing, so a variable's value cannot
//     change the file's structure; a plain scalar is re-typed (a number
//     stays a number), a quoted one stays a string;
//
//   - values of secret variables (secret_env, or names holding PASSWORD,
//     SECRET, TOKEN, API_KEY, CREDENTIAL, DSN...) and of secret fields are
//     in Pipeline.Redactor and in no error message Load returns.
package config
