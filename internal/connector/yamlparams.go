package connector

import (
	"errors"
	"fmt"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// NodeParams is the Params of a component whose configuration is a YAML
// node. The config package builds them after checking the node against the
// spec; tests build them with ParamsFromYAML.
type NodeParams struct {
	Node ast.Node // the component's configuration (a mapping, a scalar, a list)
	File string
}

// ParamsFromYAML parses src (a component's configuration, as it would stand
// under `source:`) into Params. For tests and tools.
func ParamsFromYAML(src string) (Params, error) {
	f, err := parser.ParseBytes([]byte(src), 0)
	if err != nil {
		return nil, err
	}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return &NodeParams{Node: nil}, nil
	}
	return &NodeParams{Node: f.Docs[0].Body}, nil
}

// Decode implements Params.
func (p *NodeParams) Decode(dst any) error {
	if p.Node == nil {
		return nil
	}
	if err := yaml.NodeToValue(p.Node, dst); err != nil {
		var pe *PosError
		if errors.As(err, &pe) {
			pe.Pos.File = p.File
			return pe
		}
		pos := p.Pos()
		var ye yaml.Error
		if errors.As(err, &ye) {
			if tk := ye.GetToken(); tk != nil && tk.Position != nil {
				pos = Pos{File: p.File, Line: tk.Position.Line, Col: tk.Position.Column}
			}
			return &PosError{Pos: pos, Msg: ye.GetMessage()}
		}
		return &PosError{Pos: pos, Msg: err.Error()}
	}
	return nil
}

// Pos implements Params.
func (p *NodeParams) Pos() Pos {
	pos := nodePos(p.Node)
	pos.File = p.File
	return pos
}

// FieldPos implements Params.
func (p *NodeParams) FieldPos(name string) Pos {
	if m, ok := p.Node.(*ast.MappingNode); ok {
		for _, mv := range m.Values {
			if k, _ := scalarText(mv.Key); k == name {
				pos := nodePos(mv.Value)
				pos.File = p.File
				return pos
			}
		}
	}
	return p.Pos()
}

// String describes the params for debugging.
func (p *NodeParams) String() string { return fmt.Sprintf("params at %s", p.Pos()) }
