package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

func newFlowsCmd(g *globalOptions) *cobra.Command {
	var bridge string
	cmd := &cobra.Command{
		Use:   "flows -f FILE [--host H]",
		Short: "Print the compiled flows in ovs-ofctl text; touches no switch",
		Long: `Print the flows ovs-vxctl compiles for a host, one per line, exactly as
'ovs-ofctl -O OpenFlow13 dump-flows --no-stats' prints them. Local VLANs and
tunnel port numbers are those a first apply would allocate; diff-flows compares
with what a switch really holds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := g.loadTopology()
			if err != nil {
				return err
			}
			h, err := g.managedHost(t)
			if err != nil {
				return err
			}
			alloc, err := t.Allocate(h, topology.Allocation{})
			if err != nil {
				return err
			}
			prog, err := flows.Compile(t, h, alloc)
			if err != nil {
				return err
			}
			fl, err := programBridge(prog, bridge)
			if err != nil {
				return err
			}
			return printFlows(cmd.OutOrStdout(), g.format, bridge, fl)
		},
	}
	cmd.Flags().StringVar(&bridge, "bridge", topology.BridgeTun, "which bridge's flows: br-tun or br-int")
	return cmd
}

func programBridge(p flows.Program, bridge string) ([]flows.Flow, error) {
	switch bridge {
	case topology.BridgeTun:
		return p.Tun, nil
	case topology.BridgeInt:
		return p.Int, nil
	}
	return nil, fmt.Errorf("--bridge %s: must be %s or %s", bridge, topology.BridgeTun, topology.BridgeInt)
}

// flowJSON is the --format json form of a flow.
type flowJSON struct {
	Bridge   string `json:"bridge"`
	Table    uint8  `json:"table"`
	Priority uint16 `json:"priority"`
	Cookie   string `json:"cookie"`
	Match    string `json:"match"`
	Actions  string `json:"actions"`
	Text     string `json:"text"`
}

func printFlows(w io.Writer, format, bridge string, fl []flows.Flow) error {
	if format == "json" {
		out := make([]flowJSON, len(fl))
		for i, f := range fl {
			out[i] = flowJSON{Bridge: bridge, Table: f.Table, Priority: f.Priority, Cookie: fmt.Sprintf("%#x", f.Cookie),
				Match: f.Match.String(), Actions: flows.FormatActions(f.Actions), Text: f.String()}
		}
		return writeJSON(w, out)
	}
	for _, f := range fl {
		fmt.Fprintln(w, f.String())
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func texts(fl []flows.Flow) []string {
	out := make([]string, len(fl))
	for i, f := range fl {
		out[i] = f.String()
	}
	return out
}
