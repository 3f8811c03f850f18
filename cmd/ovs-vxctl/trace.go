package main

import (
	"fmt"
	"strings"

	"github.com/digitalocean/go-openvswitch/ovs"
	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

func newTraceCmd(g *globalOptions) *cobra.Command {
	var bridge string
	cmd := &cobra.Command{
		Use:   "trace [--host H] [--bridge br-tun] FLOW",
		Short: "Run a packet through the pipeline (ofproto/trace) and print its path",
		Long: `Run a packet described in ovs-ofctl match syntax through a bridge of this
host with ovs-vswitchd's ofproto/trace, and print every table it visits and the
datapath actions it ends with. Example:
  ovs-vxctl trace 'in_port=1,dl_vlan=1,dl_src=52:54:00:00:01:02,dl_dst=ff:ff:ff:ff:ff:ff'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client := ovs.New()
			pt, err := client.App.ProtoTrace(bridge, "", []ovs.Match{rawMatch(args[0])})
			if err != nil {
				return fmt.Errorf("tracing %q on %s: %w", args[0], bridge, err)
			}
			var dp string
			if pt.DataPathActions != nil {
				if b, ok := pt.DataPathActions.(interface{ MarshalText() ([]byte, error) }); ok {
					text, _ := b.MarshalText()
					dp = string(text)
				}
			}
			if dp == "" {
				dp = datapathActionsLine(string(pt.RawOutput))
			}
			if g.format == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{
					"bridge": bridge, "flow": args[0], "datapath_actions": dp,
					"flow_actions": pt.FlowActions, "trace": string(pt.RawOutput),
				})
			}
			out := string(pt.RawOutput)
			if !strings.HasSuffix(out, "\n") {
				out += "\n"
			}
			fmt.Fprint(cmd.OutOrStdout(), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&bridge, "bridge", topology.BridgeTun, "bridge to trace through")
	return cmd
}

// rawMatch passes the user's match text to ofproto/trace unchanged.
type rawMatch string

func (m rawMatch) MarshalText() ([]byte, error) { return []byte(m), nil }
func (m rawMatch) GoString() string             { return fmt.Sprintf("rawMatch(%q)", string(m)) }

func datapathActionsLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, "Datapath actions: "); ok {
			return rest
		}
	}
	return ""
}
