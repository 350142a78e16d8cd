package maintenance

import "context"

// loop owns one background goroutine. Stopping it first ends the loop (no new
// work starts), waits for work in progress until the caller's deadline and only
// then cancels that work, whose context is workCtx.
type loop struct {
	stopLoop   context.CancelFunc
	workCtx    context.Context
	cancelWork context.CancelFunc
	done       chan struct{}
}

// start runs fn in a goroutine until fn returns; fn's context ends on stop.
func (l *loop) start(ctx context.Context, fn func(loopCtx context.Context)) {
	base := context.WithoutCancel(ctx)
	var loopCtx context.Context
	loopCtx, l.stopLoop = context.WithCancel(base)
	l.workCtx, l.cancelWork = context.WithCancel(base)
	l.done = make(chan struct{})
	go func() {
		defer close(l.done)
		fn(loopCtx)
	}()
}

// stop ends the loop and waits for it, cancelling its work when ctx ends first.
func (l *loop) stop(ctx context.Context) {
	l.stopLoop()
	select {
	case <-l.done:
	case <-ctx.Done():
		l.cancelWork()
		<-l.done
	}
	l.cancelWork()
}
