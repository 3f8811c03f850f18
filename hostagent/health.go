package hostagent

// NotReady says why the host may not match the topology, for /readyz: no
// apply has finished yet, or the last one failed. Empty: the last apply
// succeeded.
func (d *Daemon) NotReady() []string {
	p := d.unready.Load()
	switch {
	case p == nil:
		return []string{"no apply has finished yet"}
	case *p == "":
		return nil
	}
	return []string{*p}
}

// setReady records how the last apply ended.
func (d *Daemon) setReady(err error) {
	msg := ""
	if err != nil {
		msg = "the last apply failed: " + err.Error()
	}
	d.unready.Store(&msg)
}
