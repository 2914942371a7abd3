package sqlkit

import "strings"

// KeysetLevel is one level of the condition "(c1…cn) > (v1…vn)" in the
// order of ORDER BY c1…cn, where NULL sorts first: level i holds the rows
// equal to last on c1…ci and greater on c(i+1). Levels n-1 down to 0 list
// the rows after last in order, and each is one range of an index on
// (c1…cn). cols are the columns' SQL; params the parameter each is compared
// with, or nil for a plain ? each. It returns the condition and its
// arguments.
func KeysetLevel(cols, params []string, last []any, level int) (string, []any) {
	var b strings.Builder
	var args []any
	for j := 0; j <= level; j++ {
		if j > 0 {
			b.WriteString(" AND ")
		}
		b.WriteString(cols[j])
		param := "?"
		if params != nil {
			param = params[j]
		}
		switch {
		case j < level && last[j] == nil:
			b.WriteString(" IS NULL")
		case j < level:
			b.WriteString(" = " + param)
			args = append(args, last[j])
		case last[j] == nil:
			b.WriteString(" IS NOT NULL")
		default:
			b.WriteString(" > " + param)
			args = append(args, last[j])
		}
	}
	return b.String(), args
}

// KeysetWhere is the whole condition "(c1…cn) > (v1…vn)": the OR of every
// KeysetLevel, each in parentheses.
func KeysetWhere(cols, params []string, last []any) (string, []any) {
	var b strings.Builder
	var args []any
	for level := range cols {
		if level > 0 {
			b.WriteString(" OR ")
		}
		cond, a := KeysetLevel(cols, params, last, level)
		b.WriteString("(" + cond + ")")
		args = append(args, a...)
	}
	return b.String(), args
}
