package ofconn

import (
	"io"
	"sync"

	"github.com/sirupsen/logrus"
	"go.uber.org/zap"
)

var logrusOnce sync.Once

// BridgeLogrus sends libOpenflow's logrus output to log (at debug level for
// its info messages, warn for its warnings and errors) instead of standard
// error. logrus is process-wide, so the first logger passed wins. Its level
// stays at info so the per-message debug dumps libOpenflow formats are
// never built.
func BridgeLogrus(log *zap.Logger) {
	logrusOnce.Do(func() {
		logrus.SetOutput(io.Discard)
		logrus.SetLevel(logrus.InfoLevel)
		logrus.AddHook(zapHook{log.Named("libOpenflow")})
	})
}

type zapHook struct{ log *zap.Logger }

func (zapHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h zapHook) Fire(e *logrus.Entry) error {
	switch {
	case e.Level <= logrus.WarnLevel:
		h.log.Warn(e.Message)
	default:
		h.log.Debug(e.Message)
	}
	return nil
}
