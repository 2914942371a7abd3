//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le)

package file

import (
	"errors"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's io_uring interface (linux/io_uring.h).
const (
	uringEntries = 16 // submission slots: more than asyncSlots

	uringOffSQRing = 0
	uringOffSQEs   = 0x10000000

	uringFeatSingleMmap = 1 << 0 // one mapping holds both rings (5.4)
	uringFeatRWCurPos   = 1 << 3 // 5.6, which has IORING_OP_WRITE

	uringSQEAsync         = 1 << 4 // IOSQE_ASYNC (5.6)
	uringOpFsync          = 3
	uringOpWrite          = 23
	uringFsyncDatasync    = 1 << 0
	uringRegisterEventfd  = 4
	uringSQEBytes         = 64
	uringCQEBytes         = 16
	uringParamsBytes      = 120
	uringSQOffsetsWords   = 10
	uringCQOffsetsWords   = 10
	uringSQOffHead        = 0
	uringSQOffTail        = 1
	uringSQOffRingMask    = 2
	uringSQOffArray       = 6
	uringCQOffHead        = 0
	uringCQOffTail        = 1
	uringCQOffRingMask    = 2
	uringCQOffCQEs        = 5
	uringCQOffRingEntries = 3
)

var (
	_ [uringSQEBytes]byte    = [unsafe.Sizeof(uringSQE{})]byte{}
	_ [uringCQEBytes]byte    = [unsafe.Sizeof(uringCQE{})]byte{}
	_ [uringParamsBytes]byte = [unsafe.Sizeof(uringParams{})]byte{}
)

// uringParams is struct io_uring_params.
type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	_                                                                      [3]uint32
	sqOff                                                                  [uringSQOffsetsWords]uint32
	cqOff                                                                  [uringCQOffsetsWords]uint32
}

// uringSQE is a submission, struct io_uring_sqe.
type uringSQE struct {
	opcode   uint8
	flags    uint8
	ioprio   uint16
	fd       int32
	off      uint64
	addr     uint64
	len      uint32
	opFlags  uint32 // rw_flags, fsync_flags
	userData uint64
	_        [3]uint64 // buf_index, personality, splice_fd_in, addr3, pad
}

// uringCQE is a completion, struct io_uring_cqe.
type uringCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

// uringQueue is a kernelQueue of io_uring: the requests go through a ring
// shared with the kernel, and the completions come back on another, the
// eventfd registered with it counting them. Closing it costs nothing the
// process waits for (the kernel tears the ring down on its own time), where
// an AIO context costs two RCU grace periods at the latest when the
// process exits.
//
// Every request is handed to the kernel's own workers (IOSQE_ASYNC) rather
// than tried inline by io_uring_enter: tried inline, a direct write pins
// its megabyte of pages and queues it on the device from the submitting
// thread, and waits there when the device's queue is full, holding a
// processor of the run's the while. With b's 180 MB at 1M rows, that
// waiting took a fifth of the processors' time in the last quarter of the
// run; punted, the submission returns at once.
//
// One goroutine submits (the writer's), one reaps (its reaper): the
// submission ring is the first's, the completion ring the second's.
type uringQueue struct {
	fd   int
	file int

	ring []byte // both rings
	sqes []byte // the submissions

	sqHead, sqTail *uint32
	sqMask         uint32
	sqArray        []uint32
	sqe            []uringSQE
	cqHead, cqTail *uint32
	cqMask         uint32
	cqe            []uringCQE
}

func newURingQueue(file, efd int) (kernelQueue, error) {
	var p uringParams
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, uringEntries, uintptr(unsafe.Pointer(&p)), 0)
	if e != 0 {
		return nil, e // no io_uring, or refused (io_uring_disabled, a seccomp filter)
	}
	q := &uringQueue{fd: int(fd), file: file}
	ok := false
	defer func() {
		if !ok {
			q.close()
		}
	}()
	if p.features&uringFeatSingleMmap == 0 || p.features&uringFeatRWCurPos == 0 {
		return nil, errors.New("io_uring: the kernel is older than 5.6")
	}
	size := max(p.sqOff[uringSQOffArray]+p.sqEntries*4, p.cqOff[uringCQOffCQEs]+p.cqEntries*uringCQEBytes)
	var err error
	if q.ring, err = unix.Mmap(q.fd, uringOffSQRing, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return nil, err
	}
	if q.sqes, err = unix.Mmap(q.fd, uringOffSQEs, int(p.sqEntries)*uringSQEBytes, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return nil, err
	}
	word := func(off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&q.ring[off])) }
	q.sqHead, q.sqTail = word(p.sqOff[uringSQOffHead]), word(p.sqOff[uringSQOffTail])
	q.sqMask = *word(p.sqOff[uringSQOffRingMask])
	q.sqArray = unsafe.Slice(word(p.sqOff[uringSQOffArray]), p.sqEntries)
	q.sqe = unsafe.Slice((*uringSQE)(unsafe.Pointer(&q.sqes[0])), p.sqEntries)
	q.cqHead, q.cqTail = word(p.cqOff[uringCQOffHead]), word(p.cqOff[uringCQOffTail])
	q.cqMask = *word(p.cqOff[uringCQOffRingMask])
	q.cqe = unsafe.Slice((*uringCQE)(unsafe.Pointer(&q.ring[p.cqOff[uringCQOffCQEs]])), *word(p.cqOff[uringCQOffRingEntries]))
	fd32 := int32(efd)
	if _, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(q.fd), uringRegisterEventfd, uintptr(unsafe.Pointer(&fd32)), 1, 0, 0); e != 0 {
		return nil, e
	}
	ok = true
	return q, nil
}

func (q *uringQueue) submit(rqs []kernelRequest) (int, error) {
	tail := atomic.LoadUint32(q.sqTail)
	if int(tail-atomic.LoadUint32(q.sqHead))+len(rqs) > len(q.sqe) {
		return 0, unix.EAGAIN // never with asyncSlots in flight at most
	}
	for i, rq := range rqs {
		at := (tail + uint32(i)) & q.sqMask
		s := &q.sqe[at]
		*s = uringSQE{fd: int32(q.file), userData: rq.id, flags: uringSQEAsync}
		if rq.sync {
			s.opcode, s.opFlags = uringOpFsync, uringFsyncDatasync
		} else {
			s.opcode = uringOpWrite
			s.addr, s.len, s.off = uint64(uintptr(unsafe.Pointer(unsafe.SliceData(rq.b)))), uint32(len(rq.b)), uint64(rq.off)
		}
		q.sqArray[at] = at
	}
	atomic.StoreUint32(q.sqTail, tail+uint32(len(rqs)))
	var n uintptr
	var e unix.Errno
	for {
		n, _, e = unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(q.fd), uintptr(len(rqs)), 0, 0, 0, 0)
		if e != unix.EINTR {
			break
		}
	}
	if e != 0 {
		n = 0
	}
	if int(n) < len(rqs) {
		// The kernel reads the ring only inside io_uring_enter: the
		// submissions it did not take are taken back.
		atomic.StoreUint32(q.sqTail, tail+uint32(n))
	}
	if n == 0 {
		if e == 0 {
			e = unix.EAGAIN
		}
		return 0, e
	}
	return int(n), nil
}

func (q *uringQueue) reap(dst []kernelDone) []kernelDone {
	head := atomic.LoadUint32(q.cqHead)
	for tail := atomic.LoadUint32(q.cqTail); head != tail; head++ {
		c := &q.cqe[head&q.cqMask]
		dst = append(dst, kernelDone{id: c.userData, res: int64(c.res)})
	}
	atomic.StoreUint32(q.cqHead, head)
	return dst
}

func (q *uringQueue) close() {
	if q.sqes != nil {
		_ = unix.Munmap(q.sqes)
	}
	if q.ring != nil {
		_ = unix.Munmap(q.ring)
	}
	_ = unix.Close(q.fd)
}
