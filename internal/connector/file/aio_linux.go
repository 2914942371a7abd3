//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le)

package file

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's older asynchronous I/O interface (linux/aio_abi.h), as laid
// out on little-endian 64-bit machines.
const (
	iocbCmdPwrite = 1
	iocbCmdFdsync = 3
	iocbFlagResfd = 1 << 0
)

// The layouts are the kernel's: 64 and 32 bytes.
var (
	_ [64]byte = [unsafe.Sizeof(iocb{})]byte{}
	_ [32]byte = [unsafe.Sizeof(ioEvent{})]byte{}
)

// iocb is a request to the kernel.
type iocb struct {
	data   uint64 // returned in the request's ioEvent
	_      uint32 // aio_key
	_      int32  // aio_rw_flags
	opcode uint16
	_      int16 // aio_reqprio
	fildes uint32
	buf    uint64
	nbytes uint64
	offset int64
	_      uint64 // aio_reserved2
	flags  uint32
	resfd  uint32 // the eventfd told of the completion
}

// ioEvent is a completed request.
type ioEvent struct {
	data uint64
	_    uint64 // obj
	res  int64  // bytes written, or -errno
	_    int64  // res2
}

// aioQueue is a kernelQueue of Linux AIO (io_submit). Its context costs
// two RCU grace periods to destroy, explicitly or at the process's exit
// (about 35 ms here): io_uring's does not, and is tried first.
type aioQueue struct {
	ctx  uintptr // the kernel's context of the requests
	file int
	efd  int
}

func newAIOQueue(file, efd int) (kernelQueue, error) {
	q := &aioQueue{file: file, efd: efd}
	if _, _, e := unix.Syscall(unix.SYS_IO_SETUP, asyncSlots, uintptr(unsafe.Pointer(&q.ctx)), 0); e != 0 {
		return nil, e // no AIO, or aio-max-nr reached
	}
	return q, nil
}

func (q *aioQueue) submit(rqs []kernelRequest) (int, error) {
	var cbs [asyncSlots]iocb
	var ptrs [asyncSlots]*iocb
	for i, rq := range rqs {
		cbs[i] = iocb{data: rq.id, opcode: iocbCmdPwrite, fildes: uint32(q.file), flags: iocbFlagResfd, resfd: uint32(q.efd)}
		if rq.sync {
			cbs[i].opcode = iocbCmdFdsync
		} else {
			cbs[i].buf, cbs[i].nbytes, cbs[i].offset = uint64(uintptr(unsafe.Pointer(unsafe.SliceData(rq.b)))), uint64(len(rq.b)), rq.off
		}
		ptrs[i] = &cbs[i]
	}
	for {
		n, _, e := unix.Syscall(unix.SYS_IO_SUBMIT, q.ctx, uintptr(len(rqs)), uintptr(unsafe.Pointer(&ptrs[0])))
		switch {
		case e == unix.EINTR:
			continue
		case e != 0: // n is -1
			return 0, e
		}
		return int(n), nil
	}
}

func (q *aioQueue) reap(dst []kernelDone) []kernelDone {
	var evs [asyncSlots]ioEvent
	for {
		var zero unix.Timespec
		n, _, e := unix.Syscall6(unix.SYS_IO_GETEVENTS, q.ctx, 0, asyncSlots, uintptr(unsafe.Pointer(&evs[0])), uintptr(unsafe.Pointer(&zero)), 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 || n == 0 {
			return dst
		}
		for _, ev := range evs[:n] {
			dst = append(dst, kernelDone{id: ev.data, res: ev.res})
		}
	}
}

func (q *aioQueue) close() { unix.Syscall(unix.SYS_IO_DESTROY, q.ctx, 0, 0) }
