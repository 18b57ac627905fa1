package dump

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/stellaops/convert/pipeline"
)

const (
	// minDocSize is an empty document: int32 length + trailing NUL.
	minDocSize = 5
	// maxDocSize is the server's 16 MiB limit plus the 16 KiB of headroom it allows internally
	// (mapping.md, "Reading BSON and corrupt input").
	maxDocSize = 16*1024*1024 + 16*1024
	// terminatorLen is what the archive format writes as 0xFFFFFFFF.
	terminatorLen int32 = -1

	readBufSize = 256 << 10
	initDocBuf  = 16 << 10
)

// Compression says how a dump file is compressed.
type Compression int

const (
	None Compression = iota // plain BSON
	Gzip                    // .gz, as mongodump --gzip writes
	Zstd                    // .zst
)

func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	default:
		return "none"
	}
}

// fileReader remembers the file's own read error so that a failing disk is reported as an
// I/O error and not as corrupt input (the decompressor would otherwise blur the two).
type fileReader struct {
	r   io.Reader
	err error
}

func (f *fileReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil && err != io.EOF {
		f.err = err
	}
	return n, err
}

// stream reads BSON frames from one (decompressed) byte stream with one reused buffer and
// distrusts every length, after mongo-tools common/db/bson_stream.go. It is not safe for
// concurrent use; every Scan builds its own.
type stream struct {
	name  string // the file, for errors
	src   *fileReader
	comp  Compression
	zdec  *zstd.Decoder
	br    *bufio.Reader
	off   int64     // offset of the next unread byte in the uncompressed stream
	limit int64     // length of the uncompressed stream where known (plain files), else -1
	buf   []byte    // the one document buffer, grown on demand and reused
	seek  io.Seeker // plain files only
}

// newStream wraps r. limit is the stream's length for plain input (-1 if unknown); seeker,
// when non-nil, lets skipTo seek instead of reading (plain files).
func newStream(name string, r io.Reader, comp Compression, limit int64, seeker io.Seeker) (*stream, error) {
	s := &stream{name: name, src: &fileReader{r: r}, comp: comp, limit: -1}
	var dec io.Reader
	switch comp {
	case None:
		dec = s.src
		s.limit = limit
		s.seek = seeker
	case Gzip:
		zr, err := gzip.NewReader(s.src)
		if err != nil {
			return nil, s.fail(err, 0, "gzip header")
		}
		dec = zr
	case Zstd:
		// One decoder goroutine per scan keeps memory flat however many scans run at once.
		zr, err := zstd.NewReader(s.src, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, s.fail(err, 0, "zstd header")
		}
		s.zdec = zr
		dec = zr
	default:
		return nil, fmt.Errorf("dump file %s: unknown compression %d", name, comp)
	}
	s.br = bufio.NewReaderSize(dec, readBufSize)
	return s, nil
}

// openStream opens path for one scan; the caller closes the stream.
func openStream(path string, comp Compression) (*stream, *os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("dump file %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("dump file %s: %w", path, err)
	}
	s, err := newStream(path, f, comp, fi.Size(), f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return s, f, nil
}

func (s *stream) close() {
	if s.zdec != nil {
		s.zdec.Close()
		s.zdec = nil
	}
}

func (s *stream) corrupt(at int64, format string, args ...any) error {
	return &pipeline.CorruptError{File: s.name, Offset: at, What: fmt.Sprintf(format, args...)}
}

// fail classifies a read error at uncompressed offset at: the file's own I/O error stays an
// I/O error; a short stream or a decompressor's complaint is corrupt input.
func (s *stream) fail(err error, at int64, what string) error {
	if s.src.err != nil {
		return fmt.Errorf("dump file %s at byte %d: %w", s.name, at, s.src.err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return s.corrupt(at, "%s", what)
	}
	return s.corrupt(at, "%s: %s: %v", what, s.comp, err)
}

type frameKind int

const (
	frameEnd        frameKind = iota // clean end of stream at a frame boundary
	frameTerminator                  // archive terminator 0xFFFFFFFF
	frameDoc
)

// next reads one frame at s.off. With keep the document is returned in the reused buffer
// (valid until the next call); without it the body is skipped but its trailing NUL still
// checked. A terminator is only recognised where allowTerminator says so; elsewhere it is a
// length below the minimum. Every broken frame is a *pipeline.CorruptError at the frame's start.
func (s *stream) next(allowTerminator, keep bool) (frameKind, int64, []byte, error) {
	start := s.off
	lb, err := s.br.Peek(4)
	if len(lb) < 4 {
		if len(lb) == 0 && err == io.EOF {
			return frameEnd, start, nil, nil
		}
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return 0, start, nil, s.fail(err, start, fmt.Sprintf("file ends inside a document length (%d of 4 bytes)", len(lb)))
	}
	n := int32(binary.LittleEndian.Uint32(lb))
	if allowTerminator && n == terminatorLen {
		s.br.Discard(4) //nolint:errcheck // the 4 bytes are buffered
		s.off += 4
		return frameTerminator, start, nil, nil
	}
	switch {
	case n < minDocSize:
		return 0, start, nil, s.corrupt(start, "document length %d is below the minimum of %d", n, minDocSize)
	case n > maxDocSize:
		return 0, start, nil, s.corrupt(start, "document length %d is over the maximum of %d", n, maxDocSize)
	case s.limit >= 0 && start+int64(n) > s.limit:
		return 0, start, nil, s.corrupt(start, "document length %d runs past the end of the file (%d bytes left)", n, s.limit-start)
	}
	size := int(n)
	var doc []byte
	var last byte
	switch {
	case keep && size <= s.br.Size():
		// Most documents fit in the read buffer: handed out from there, not copied (valid
		// until the next call, as a copy in s.buf would be).
		b, err := s.br.Peek(size)
		if err != nil {
			return 0, start, nil, s.fail(err, start, fmt.Sprintf("file ends inside a document of length %d (%d bytes present)", n, len(b)))
		}
		doc, last = b, b[size-1]
		s.br.Discard(size) //nolint:errcheck // the document is buffered
	case keep:
		if cap(s.buf) < size {
			s.buf = make([]byte, min(max(size, 2*cap(s.buf), initDocBuf), maxDocSize))
		}
		b := s.buf[:size]
		copy(b, lb)
		s.br.Discard(4) //nolint:errcheck // buffered
		if k, err := io.ReadFull(s.br, b[4:]); err != nil {
			return 0, start, nil, s.fail(err, start, fmt.Sprintf("file ends inside a document of length %d (%d bytes present)", n, 4+k))
		}
		doc, last = b, b[size-1]
	default:
		s.br.Discard(4) //nolint:errcheck // buffered
		k, err := s.br.Discard(size - 5)
		if err == nil {
			last, err = s.br.ReadByte()
			if err == nil {
				k++
			}
		}
		if err != nil {
			return 0, start, nil, s.fail(err, start, fmt.Sprintf("file ends inside a document of length %d (%d bytes present)", n, 4+k))
		}
	}
	if last != 0 {
		return 0, start, nil, s.corrupt(start, "document of length %d does not end with a NUL byte (found %#02x)", n, last)
	}
	s.off = start + int64(n)
	return frameDoc, start, doc, nil
}

// skipTo moves to uncompressed offset to: a seek for plain files, else decompress and discard.
// An offset past the end of the stream is corruption (the file shrank since the offset was
// committed).
func (s *stream) skipTo(ctx context.Context, to int64) error {
	if to < s.off {
		return fmt.Errorf("dump file %s: cannot resume at byte %d, already at %d", s.name, to, s.off)
	}
	if s.limit >= 0 && to > s.limit {
		return s.corrupt(to, "resume offset is past the end of the file (%d bytes)", s.limit)
	}
	if s.seek != nil && s.br.Buffered() == 0 {
		if _, err := s.seek.Seek(to, io.SeekStart); err != nil {
			return fmt.Errorf("dump file %s at byte %d: %w", s.name, to, err)
		}
		s.br.Reset(s.src)
		s.off = to
		return nil
	}
	const chunk = 1 << 20
	done := ctx.Done()
	for s.off < to {
		select {
		case <-done:
			return ctx.Err()
		default:
		}
		n, err := s.br.Discard(int(min(to-s.off, chunk)))
		s.off += int64(n)
		if err != nil {
			return s.fail(err, to, fmt.Sprintf("resume offset is past the end of the uncompressed stream (%d bytes)", s.off))
		}
	}
	return nil
}
