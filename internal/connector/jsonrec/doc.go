// Package jsonrec turns JSON documents into records: places in a document
// (paths of member names and indexes), strict decoding that keeps numbers
// exact, and the conversion of a JSON object into a row of a schema. The
// components that read JSON from services (the http source and lookup, the
// redis lookup) share it, so that a record reads the same from each.
//
//	rd, _ := jsonrec.NewReader(schema, nil)       // fields by member name
//	doc, _ := jsonrec.Decode(body)                 // numbers as json.Number
//	list, _ := jsonrec.MustPath("data.items").Get(doc)
//	row, err := rd.Row(list.([]any)[0])            // err names the field and value
//
// Invariants: numbers are never rounded through float64 on their way to an
// int or a decimal field; a value that does not convert is an error naming
// the field, never a null; a missing member or a JSON null is a null.
package jsonrec
