package pipeline

// FreeList keeps a bounded number of reusable values, such as batches and COPY buffers that
// grow to megabytes: reusing them saves growing them again. A sync.Pool would not do: it
// empties at every garbage collection, and with the small heap of a conversion one runs every
// few batches. Values exist only as many as were in use at once; the list holds those returned.
type FreeList[T any] struct{ ch chan T }

// NewFreeList returns a list that keeps up to n values.
func NewFreeList[T any](n int) *FreeList[T] { return &FreeList[T]{ch: make(chan T, n)} }

// Get returns a kept value, or false when there is none.
func (f *FreeList[T]) Get() (T, bool) {
	select {
	case v := <-f.ch:
		return v, true
	default:
		var zero T
		return zero, false
	}
}

// Put keeps v, or drops it when the list is full.
func (f *FreeList[T]) Put(v T) {
	select {
	case f.ch <- v:
	default:
	}
}
