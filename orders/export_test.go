package orders

// WakeChannel exposes a worker's wake-up signal to the tests.
func WakeChannel(w *Worker) <-chan struct{} { return w.wake }
