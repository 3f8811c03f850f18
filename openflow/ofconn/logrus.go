package ofconn

import (
	"io"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"
	"go.uber.org/zap"
)

var (
	logrusOnce sync.Once
	logrusDest atomic.Pointer[zap.Logger]
)

// BridgeLogrus sends libOpenflow's logrus output to log (at debug level for
// its info messages, warn for its warnings and errors) instead of standard
// error. logrus is process-wide: the last logger passed receives it. Its
// level stays at info so the per-message debug dumps libOpenflow formats are
// never built.
func BridgeLogrus(log *zap.Logger) {
	logrusDest.Store(log.Named("libOpenflow"))
	logrusOnce.Do(func() {
		logrus.SetOutput(io.Discard)
		logrus.SetLevel(logrus.InfoLevel)
		logrus.AddHook(zapHook{})
	})
}

type zapHook struct{}

func (zapHook) Levels() []logrus.Level { return logrus.AllLevels }

func (zapHook) Fire(e *logrus.Entry) error {
	log := logrusDest.Load()
	switch {
	case e.Level <= logrus.WarnLevel:
		log.Warn(e.Message)
	default:
		log.Debug(e.Message)
	}
	return nil
}
