package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// reportError prints why a command failed on w: one line "ovs-vxctl: MSG",
// or under --log-format json one JSON log line (the encoding of every other
// log line) with the command, the exit status and, for an invalid topology,
// each problem on its own, so that log collectors need no second parser.
func (g *globalOptions) reportError(w io.Writer, cmd *cobra.Command, code int, msg string, err error) {
	if g.logFormat != "json" {
		fmt.Fprintln(w, "ovs-vxctl: "+msg)
		return
	}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(w), zapcore.ErrorLevel)
	fields := []zap.Field{zap.Int("exit_code", code), zap.String("error", msg)}
	if cmd != nil {
		fields = append(fields, zap.String("command", cmd.CommandPath()))
	}
	var te *topology.Errors
	if errors.As(err, &te) {
		problems := make([]string, len(te.List))
		for i, p := range te.List {
			problems[i] = p.Error()
		}
		fields = append(fields, zap.Strings("problems", problems))
	}
	zap.New(core).Error("ovs-vxctl failed", fields...)
}
