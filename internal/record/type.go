package record

import (
	"fmt"
	"strings"
)

// Type is the logical type of a field. Each type has exactly one Go
// representation inside a Row; see the constants.
type Type uint8

const (
	// Any is a field whose type is not known yet (for example a json value
	// taken apart by an expression). Its values may be any representation.
	Any Type = iota
	// String values are Go strings.
	String
	// Int values are int64.
	Int
	// Float values are float64.
	Float
	// Decimal values are Decimal (exact).
	Decimal
	// Bool values are bool.
	Bool
	// Timestamp values are time.Time, zone and nanoseconds kept.
	Timestamp
	// Date values are LocalDate.
	Date
	// Bytes values are []byte.
	Bytes
	// JSON values are the decoded tree: map[string]any, []any, string,
	// float64, bool, json.Number or nil.
	JSON
)

var typeNames = [...]string{
	Any:       "any",
	String:    "string",
	Int:       "int",
	Float:     "float",
	Decimal:   "decimal",
	Bool:      "bool",
	Timestamp: "timestamp",
	Date:      "date",
	Bytes:     "bytes",
	JSON:      "json",
}

// String returns the name used in pipeline files.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// TypeNames lists the names ParseType accepts, in declaration order.
func TypeNames() []string { return append([]string(nil), typeNames[:]...) }

// ParseType maps a name from a pipeline file to a Type. A few common aliases
// (integer, bigint, double, text, boolean, datetime, numeric) are accepted.
func ParseType(name string) (Type, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "any":
		return Any, nil
	case "string", "text", "varchar":
		return String, nil
	case "int", "integer", "bigint", "int64":
		return Int, nil
	case "float", "double", "float64", "real":
		return Float, nil
	case "decimal", "numeric":
		return Decimal, nil
	case "bool", "boolean":
		return Bool, nil
	case "timestamp", "datetime", "timestamptz":
		return Timestamp, nil
	case "date":
		return Date, nil
	case "bytes", "binary", "blob":
		return Bytes, nil
	case "json", "object":
		return JSON, nil
	}
	return Any, fmt.Errorf("unknown type %q (want one of %s)", name, strings.Join(typeNames[1:], ", "))
}
