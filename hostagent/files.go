package hostagent

import (
	"fmt"

	"github.com/ovs-vxctl/ovs-vxctl/internal/watch"
)

// watchFile starts watching Options.File (through its directory, see
// package watch); nil, which watches nothing, when there is none.
func (d *Daemon) watchFile() (*watch.File, error) {
	if d.o.File == "" {
		return nil, nil
	}
	f, err := watch.New(d.o.File)
	if err != nil {
		return nil, fmt.Errorf("watching the topology file: %w", err)
	}
	return f, nil
}
