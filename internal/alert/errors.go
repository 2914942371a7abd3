package alert

import "fmt"

// ConfigError reports an unusable Options value. It names the webhook by its
// position and the field, never the value: webhook URLs and header values
// often embed tokens.
type ConfigError struct {
	// Webhook is the index in Options.Webhooks, or -1 for a field of
	// Options itself.
	Webhook int
	Field   string
	Reason  string
}

func (e *ConfigError) Error() string {
	if e.Webhook < 0 {
		return fmt.Sprintf("alert: %s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("alert: webhooks[%d].%s: %s", e.Webhook, e.Field, e.Reason)
}
