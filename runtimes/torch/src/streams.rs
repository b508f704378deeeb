//! The parallel schedule on CUDA: a single host thread queues each node on
//! the stream of its branch ([`lanes`]), streams from libtorch's pool joined
//! with CUDA events (through the shim).

use std::ffi::c_void;

use anyhow::{Context, Result};
use tch::{Device as TchDevice, Tensor};

use super::ffi::{self, check};
use super::plan::{gather, release, Plan};
use super::trace::Span;
use speedbench::graph::{Graph, NodeId};

/// Assigns every node a stream index in `0..streams`: a node continues on
/// the stream of an input it is the first reader of (a branch goes on where
/// it forked); any other node opens a branch on the least recently used
/// stream, so concurrent branches get different streams while there are
/// enough.
pub(super) fn lanes(graph: &Graph, streams: usize) -> Vec<usize> {
    let consumers = graph.consumers();
    let mut last_used = vec![0usize; streams.max(1)];
    let mut lane = vec![0usize; graph.nodes.len()];
    for (id, node) in graph.nodes.iter().enumerate() {
        let continued = node
            .inputs
            .iter()
            .find(|&&p| consumers[p].first() == Some(&id))
            .map(|&p| lane[p]);
        lane[id] = continued.unwrap_or_else(|| {
            (0..last_used.len())
                .min_by_key(|&l| last_used[l])
                .unwrap_or(0)
        });
        last_used[lane[id]] = id + 1;
    }
    lane
}

/// A CUDA event from the shim, freed on drop.
struct Event(*mut c_void);

impl Event {
    /// An event that records a timestamp too (the traced pass).
    fn timed() -> Result<Event> {
        let mut ev = std::ptr::null_mut();
        // SAFETY: the shim writes a new c10::Event on success.
        check("creating a timed CUDA event", unsafe {
            ffi::sb_event_new_timed(&mut ev)
        })?;
        Ok(Event(ev))
    }

    fn record(&self, s: ffi::Stream) -> Result<()> {
        // SAFETY: a live event and a pool stream.
        check("recording a CUDA event", unsafe {
            ffi::sb_event_record(self.0, s)
        })
    }

    /// Milliseconds from `self` to `later`, both completed.
    fn until(&self, later: &Event) -> Result<f64> {
        let mut ms = 0.0;
        // SAFETY: two live timed events, recorded and completed.
        check("reading a CUDA event's time", unsafe {
            ffi::sb_event_elapsed(self.0, later.0, &mut ms)
        })?;
        Ok(ms)
    }

    fn new() -> Result<Event> {
        let mut ev = std::ptr::null_mut();
        // SAFETY: the shim writes a new c10::Event on success.
        check("creating a CUDA event", unsafe {
            ffi::sb_event_new(&mut ev)
        })?;
        Ok(Event(ev))
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: created by sb_event_new, freed once.
        unsafe { ffi::sb_event_free(self.0) }
    }
}

/// Makes `s` the thread's current stream until dropped.
pub(super) struct CurrentStream(ffi::Stream);

impl CurrentStream {
    pub(super) fn set(s: ffi::Stream) -> Result<CurrentStream> {
        let mut prev = ffi::Stream::default();
        // SAFETY: plain values in and out.
        check("setting the CUDA stream", unsafe {
            ffi::sb_stream_exchange(s, &mut prev)
        })?;
        Ok(CurrentStream(prev))
    }
}

impl Drop for CurrentStream {
    fn drop(&mut self) {
        let mut ignored = ffi::Stream::default();
        // SAFETY: as in `set`; restoring a stream that was current cannot fail.
        unsafe { ffi::sb_stream_exchange(self.0, &mut ignored) };
    }
}

/// A stream from libtorch's CUDA stream pool (never the default stream).
pub(super) fn pool_stream() -> Result<ffi::Stream> {
    let mut s = ffi::Stream::default();
    // SAFETY: plain values out.
    check("taking a stream from the CUDA pool", unsafe {
        ffi::sb_stream_from_pool(0, &mut s)
    })?;
    Ok(s)
}

/// Waits until the work queued on `s` is done.
pub(super) fn synchronize(s: ffi::Stream) -> Result<()> {
    // SAFETY: plain value in.
    check("synchronising a CUDA stream", unsafe {
        ffi::sb_stream_synchronize(s)
    })
}

pub(super) struct Streams {
    streams: Vec<ffi::Stream>,
    /// Stream index of every node.
    lane: Vec<usize>,
    /// For nodes read on another stream: the event recorded after them.
    events: Vec<Option<Event>>,
    /// Joins the output's stream back into the first one (a CUDA-graph
    /// capture must end on the stream it began on).
    join: Event,
}

impl Streams {
    pub(super) fn new(graph: &Graph, lane: Vec<usize>) -> Result<Streams> {
        let count = lane.iter().max().map_or(1, |m| m + 1);
        let streams = (0..count)
            .map(|_| pool_stream())
            .collect::<Result<Vec<_>>>()?;
        let events = graph
            .consumers()
            .iter()
            .enumerate()
            .map(|(id, cs)| {
                if cs.iter().any(|&c| lane[c] != lane[id]) {
                    Event::new().map(Some)
                } else {
                    Ok(None)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Streams {
            streams,
            lane,
            events,
            join: Event::new()?,
        })
    }

    /// One pool stream for all `nodes`: the sequential pass, traced.
    pub(super) fn new_single(nodes: usize) -> Result<Streams> {
        Ok(Streams {
            streams: vec![pool_stream()?],
            lane: vec![0; nodes],
            events: (0..nodes).map(|_| None).collect(),
            join: Event::new()?,
        })
    }

    /// The stream the pass starts on (node 0's), which a CUDA-graph capture
    /// captures.
    pub(super) fn first(&self) -> ffi::Stream {
        self.streams[self.lane[0]]
    }

    /// A pass queued under a CUDA-graph capture of [`Streams::first`]: no
    /// synchronisation (not allowed while capturing); every stream joins
    /// the first one again at the end.
    pub(super) fn enqueue(
        &mut self,
        plan: &Plan,
        input: Tensor,
        device: TchDevice,
    ) -> Result<Tensor> {
        Ok(self.pass(plan, input, device, false, false)?.0)
    }

    /// CUDA streams in use.
    pub(super) fn count(&self) -> usize {
        self.streams.len()
    }

    pub(super) fn run(&mut self, plan: &Plan, input: Tensor, device: TchDevice) -> Result<Tensor> {
        Ok(self.run_traced(plan, input, device, false)?.0)
    }

    /// A pass; with `trace`, also every node's span on its stream, from
    /// timed CUDA events recorded before and after it (all streams are
    /// synchronised before the times are read).
    pub(super) fn run_traced(
        &mut self,
        plan: &Plan,
        input: Tensor,
        device: TchDevice,
        trace: bool,
    ) -> Result<(Tensor, Vec<Span>)> {
        self.pass(plan, input, device, trace, true)
    }

    /// The pass of [`Streams::run_traced`]; without `sync`, queued only
    /// (the output's stream joined into the first), for a capture.
    fn pass(
        &mut self,
        plan: &Plan,
        input: Tensor,
        device: TchDevice,
        trace: bool,
        sync: bool,
    ) -> Result<(Tensor, Vec<Span>)> {
        let mut values: Vec<Option<Tensor>> = (0..plan.len()).map(|_| None).collect();
        let mut uses = plan.uses();
        let first = self.streams[self.lane[0]];
        let base = if trace { Some(Event::timed()?) } else { None };
        if let Some(b) = &base {
            b.record(first)?;
        }
        let mut marks: Vec<(NodeId, Event, Event)> = Vec::new();
        {
            let _on = CurrentStream::set(first)?;
            values[0] = Some(plan.admit(input.f_to_device(device)?)?);
            self.record(0, first)?;
        }
        for id in 1..plan.len() {
            let s = self.streams[self.lane[id]];
            let _on = CurrentStream::set(s)?;
            for &i in &plan.inputs[id] {
                if self.lane[i] != self.lane[id] {
                    self.wait(i, s, values[i].as_ref())?;
                }
            }
            let mark = if trace {
                Some((Event::timed()?, Event::timed()?))
            } else {
                None
            };
            if let Some((start, _)) = &mark {
                start.record(s)?;
            }
            let y = {
                let x = gather(&values, &plan.inputs[id])?;
                plan.exec(id, &x)?
            };
            if let Some((start, end)) = mark {
                end.record(s)?;
                marks.push((id, start, end));
            }
            release(&mut values, &mut uses, &plan.inputs[id]);
            values[id] = Some(y);
            self.record(id, s)?;
        }
        let out = self.streams[self.lane[plan.output()]];
        if out != first {
            // every other stream already joined the output's (each one's
            // last node is read on another stream, up to the output)
            self.join.record(out)?;
            // SAFETY: a live event and a pool stream.
            check("joining the first stream", unsafe {
                ffi::sb_event_block(self.join.0, first)
            })?;
        }
        if !sync {
            let y = values[plan.output()]
                .take()
                .context("the graph produced no output")?;
            return Ok((y, Vec::new()));
        }
        synchronize(out)?;
        let mut spans = Vec::with_capacity(marks.len());
        if let Some(base) = &base {
            for &s in &self.streams {
                synchronize(s)?;
            }
            for (id, start, end) in &marks {
                spans.push(Span {
                    node: *id,
                    track: self.lane[*id],
                    start_us: base.until(start)? * 1e3,
                    end_us: base.until(end)? * 1e3,
                });
            }
        }
        let y = values[plan.output()]
            .take()
            .context("the graph produced no output")?;
        Ok((y, spans))
    }

    /// Records node `id`'s event, if another stream reads it.
    fn record(&self, id: NodeId, s: ffi::Stream) -> Result<()> {
        match &self.events[id] {
            // SAFETY: a live event and a pool stream.
            Some(ev) => check("recording a CUDA event", unsafe {
                ffi::sb_event_record(ev.0, s)
            }),
            None => Ok(()),
        }
    }

    /// Makes stream `s` wait for node `id`, and tells the caching allocator
    /// that `s` uses its value (so the memory is not reused too early).
    fn wait(&self, id: NodeId, s: ffi::Stream, value: Option<&Tensor>) -> Result<()> {
        let ev = self.events[id]
            .as_ref()
            .with_context(|| format!("executor bug: node #{id} has no event"))?;
        // SAFETY: a live event and a pool stream.
        check("waiting on a CUDA event", unsafe {
            ffi::sb_event_block(ev.0, s)
        })?;
        let value = value.with_context(|| format!("executor bug: node #{id} has no value"))?;
        // SAFETY: tch's C_tensor is an at::Tensor*, alive for this call.
        check("record_stream", unsafe {
            ffi::sb_record_stream(value.as_ptr() as *mut c_void, s)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::diamond;
    use speedbench::graph::analysis::analyse;

    #[test]
    fn branches_get_their_own_streams() {
        let g = diamond();
        let lane = lanes(&g, 4);
        let id = |name: &str| g.nodes.iter().position(|n| n.name == name).unwrap();
        // The first reader of the stem continues its stream; the other
        // branches out of the stem each open their own.
        assert_eq!(lane[id("a.conv")], lane[id("stem")]);
        let opened = [id("b.pool"), id("c.slice"), id("sc")].map(|n| lane[n]);
        assert!(opened.iter().all(|&l| l != lane[id("stem")]));
        assert_ne!(opened[0], opened[1]);
        assert_ne!(opened[1], opened[2]);
        assert_ne!(opened[0], opened[2]);
        assert_eq!(lane[id("b.up")], lane[id("b.pool")]);
        // One stream: everything on it.
        assert!(lanes(&g, 1).iter().all(|&l| l == 0));
    }

    /// The streams a cell records are the schedule's stream count: up to
    /// the graph's width, `lanes` opens every stream it is given.
    #[test]
    fn lanes_open_every_stream_up_to_the_graph_width() {
        let scalenet = speedbench::zoo::load(
            &speedbench::zoo::Catalog::built_in().unwrap(),
            "scalenet50",
            128,
            None,
            0,
        )
        .unwrap();
        for g in [diamond(), scalenet.graph] {
            let width = analyse(&g).max_parallel_branches;
            assert!(width > 1);
            for streams in 1..=width {
                let used = lanes(&g, streams).iter().max().map_or(1, |m| m + 1);
                assert_eq!(used, streams, "{} on {streams} stream(s)", g.name);
            }
        }
    }
}
