package daemon

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/internal/control"
	"github.com/hbfence/hbfence/restart/store"
)

// Commands from any host (issue 11). A command that changes the pool is
// carried out by the master. On another host, the daemon forwards it:
//
//  1. it writes the command (method and arguments, a random id and the
//     master's epoch as this host knows it) to its own record
//     requests/NAME on the cluster root (one writer: this host);
//  2. it sends the master a KindRequest message through its slot, naming
//     the id and the epoch;
//  3. the master, while it is the master of that epoch, acknowledges,
//     reads the request, checks the id, carries the command out with its
//     own handler (which checks everything it checks for a local command,
//     the mastership again right before its write included) and writes
//     the result or the error to answers/NAME, stamped with its epoch;
//  4. this host waits for the answer with its id and returns it as its
//     own.
//
// Nothing here decides anything the master would not decide for a command
// typed on it: a forwarded command is the same command, run there. A
// master that changed in between refuses the message (the epoch), and the
// command fails with the name of the new master; a request acknowledged
// but not answered in time (the master died while carrying it out) is
// reported as such, and may or may not have been carried out: the command
// says so, as it would for a master that died under a local command. The
// master remembers the last id it served per host and answers a repeat
// without running it again.

// forwardable are the control methods forwarded to the master when this
// host is not the master.
var forwardable = map[string]bool{"guest": true, "pool": true, "pool.validate": true, "repository": true, "pool.repair": true, "host.evacuate": true, "host.maintenance": true, "fence": true, "master.move": true}

// errNotMaster marks a command refused because this host is not the
// master: the one a forward answers (errors.Is).
var errNotMaster = errors.New("this host is not the master")

// notMaster is a refusal because this host is not the master, with its
// own message.
type notMaster struct{ error }

func (notMaster) Is(target error) bool { return target == errNotMaster }

// forwardWait bounds the wait for the master's answer.
func (d *Daemon) forwardWait() time.Duration {
	return 8*d.t.Interval + 8*d.t.IOTimeout + 5*time.Second
}

// forwarding wraps a master-only handler: on a host that is not the
// master, the command goes to the master.
func (d *Daemon) forwarding(method string, local control.Handler) control.Handler {
	return func(ctx context.Context, args json.RawMessage) (any, error) {
		res, err := local(ctx, args)
		if !errors.Is(err, errNotMaster) || d.gstore == nil {
			return res, err
		}
		ans, ferr := d.forward(ctx, method, args)
		if ferr != nil {
			return nil, fmt.Errorf("%v; forwarding it to the master: %w", err, ferr)
		}
		return ans, nil
	}
}

// forward sends a command to the master and returns its answer.
func (d *Daemon) forward(ctx context.Context, method string, args json.RawMessage) (json.RawMessage, error) {
	in := d.current()
	if in == nil {
		return nil, errors.New("this host has not joined the pool")
	}
	r := in.ms.runner()
	if r == nil {
		return nil, errors.New("this host has not joined the pool")
	}
	h := r.Holder()
	if !h.Known || h.Owner.Name == "" || h.Owner.Slot < 0 {
		return nil, errors.New("no host holds the master role now; retry once one does (hbfence master)")
	}
	self := in.fc.m.Self()
	if h.Owner.Slot == self.Slot && h.Owner.Generation == self.Generation {
		// This host holds the epoch but may not act now (its renewals
		// are not fresh, or its tenure has not begun): a message to
		// its own slot would never be read.
		return nil, fmt.Errorf("this host holds the master role (epoch %d) but cannot act as master now (its renewals are not fresh, or it is taking the role over): retry in a moment", h.Epoch)
	}
	req := store.Request{ID: rand.Uint64() | 1, Epoch: h.Epoch, From: self.Name, Method: method, Args: args}
	if err := d.gstore.WriteRequest(req); err != nil {
		return nil, fmt.Errorf("writing the request on the cluster root: %w", err)
	}
	var arg [24]byte
	binary.LittleEndian.PutUint64(arg[0:8], req.ID)
	binary.LittleEndian.PutUint64(arg[8:16], req.Epoch)
	seq, err := in.fc.m.Send(int(h.Owner.Slot), h.Owner.Generation, heartbeat.KindRequest, arg)
	if err != nil {
		return nil, fmt.Errorf("sending the request to %s: %w", h.Owner.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.forwardWait())
	defer cancel()
	tick := time.NewTicker(d.t.Interval / 4)
	defer tick.Stop()
	acked := false
	for {
		if !acked {
			at, answer, known := in.fc.m.Answered(seq)
			switch {
			case !known:
				return nil, fmt.Errorf("the request to %s left this host's slot unanswered (this host rejoined, or its messages were dropped); nothing was done: send the command again", h.Owner.Name)
			case !at.IsZero() && answer != heartbeat.AnswerAccepted:
				return nil, fmt.Errorf("%s is no longer the master of epoch %d; %s", h.Owner.Name, h.Epoch, in.ms.whereMaster())
			case !at.IsZero():
				acked = true
			}
		}
		if acked {
			if a, err := d.gstore.ReadAnswer(self.Name); err == nil && a.ID == req.ID {
				if a.Error != "" {
					return nil, fmt.Errorf("on the master %s: %s", a.Master, a.Error)
				}
				return a.Result, nil
			}
		}
		select {
		case <-ctx.Done():
			if !acked {
				in.fc.m.Withdraw(heartbeat.KindRequest)
				return nil, fmt.Errorf("the master %s did not take the request within %v (it may be down, or run an hbfence that does not forward commands); nothing was done", h.Owner.Name, d.forwardWait())
			}
			return nil, fmt.Errorf("the master %s took the request but did not answer within %v: it may or may not have carried it out (see hbfence status and hbfence guest list)", h.Owner.Name, d.forwardWait())
		case <-tick.C:
		}
	}
}

// served is the last forwarded request the master carried out per host,
// with its answer: a repeat is answered again, not run again.
type served struct {
	mu   sync.Mutex
	last map[string]store.Answer
}

// onRequest is the master's side of a KindRequest message.
func (d *Daemon) onRequest(in *incarnation, msg heartbeat.Incoming) heartbeat.Reply {
	epoch := binary.LittleEndian.Uint64(msg.Message.Arg[8:16])
	id := binary.LittleEndian.Uint64(msg.Message.Arg[0:8])
	r := in.ms.runner()
	if r == nil || d.gstore == nil {
		return heartbeat.Reply{Ack: true, Answer: heartbeat.AnswerNotMaster}
	}
	if m, ok := r.Master(clk.Now()); !ok || m.Epoch != epoch {
		return heartbeat.Reply{Ack: true, Answer: heartbeat.AnswerNotMaster}
	}
	from := msg.FromName
	return heartbeat.Reply{Ack: true, After: func() { go d.serveRequest(from, id, epoch) }}
}

// serveRequest carries out host from's forwarded request id and writes the
// answer.
func (d *Daemon) serveRequest(from string, id, epoch uint64) {
	d.served.mu.Lock()
	if a, ok := d.served.last[from]; ok && a.ID == id {
		d.served.mu.Unlock()
		d.writeAnswer(from, a)
		return
	}
	d.served.mu.Unlock()
	req, err := d.gstore.ReadRequest(from)
	a := store.Answer{ID: id, Epoch: epoch, Master: d.c.Host.Name}
	switch {
	case err != nil:
		a.Error = fmt.Sprintf("reading the request of %s: %v", from, err)
	case req.ID != id:
		a.Error = fmt.Sprintf("the request record of %s holds another request (id %x, not %x): send the command again", from, req.ID, id)
	case !forwardable[req.Method]:
		a.Error = fmt.Sprintf("%q is not a command that is forwarded to the master", req.Method)
	default:
		h := d.handlers()[req.Method]
		ctx, cancel := context.WithTimeout(context.Background(), d.forwardWait())
		res, herr := h(ctx, req.Args)
		cancel()
		if herr != nil {
			a.Error = herr.Error()
		} else if a.Result, err = json.Marshal(res); err != nil {
			a.Error = err.Error()
		}
		d.log.Info().Str("peer", from).Str("method", req.Method).Bool("ok", herr == nil).Msg("carried out a command forwarded by another host")
	}
	d.served.mu.Lock()
	if d.served.last == nil {
		d.served.last = map[string]store.Answer{}
	}
	d.served.last[from] = a
	d.served.mu.Unlock()
	d.writeAnswer(from, a)
}

func (d *Daemon) writeAnswer(to string, a store.Answer) {
	if err := d.gstore.WriteAnswer(to, a); err != nil {
		d.log.Error().Err(err).Str("peer", to).Msg("writing the answer to a forwarded command")
	}
}
