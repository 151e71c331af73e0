package server

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstream/tickstream/fanout"
)

// collector reads the engine's and ingest's counters at scrape time, so
// that the hot paths keep their own cheap atomics and pay nothing for
// Prometheus.
type collector struct {
	s                                                      *Server
	clients, httpConns, subs, messages, bytes, frames      *prometheus.Desc
	conflated, stuck, conflationStarts, conflating         *prometheus.Desc
	dropped                                                *prometheus.Desc
	slow, errs, published, records, rejected, lag, lagSecs *prometheus.Desc
	symbols, reserved, live                                *prometheus.Desc
	refused                                                *prometheus.Desc
	checkpointTime, checkpointFailures                     *prometheus.Desc
	outages, outageSecs, catchUpSecs, lost, recreated      *prometheus.Desc
	publishTime, publishAge, writeWait                     *prometheus.Desc
	barsLate, barsCapped, barsBytes                        *prometheus.Desc
}

func newCollector(s *Server) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("tickstream_"+name, help, labels, nil)
	}
	return &collector{
		s:         s,
		clients:   d("connections", "WebSocket connections open now."),
		httpConns: d("http_connections", "Plain HTTP connections open now (not yet or never upgraded to WebSocket), bounded by --max-http-connections."),
		checkpointTime: d("checkpoint_last_saved_timestamp_seconds",
			"When the last checkpoint was taken (unix seconds); 0 before the first."),
		checkpointFailures: d("checkpoint_failures_total", "Checkpoints that could not be written."),
		subs:               d("subscriptions", "Symbol subscriptions live now."),
		messages:           d("messages_out_total", "Protocol messages queued to clients."),
		bytes:              d("bytes_out_total", "Bytes written to clients (before compression)."),
		frames:             d("frames_out_total", "WebSocket frames written to clients."),
		conflated:          d("conflated_total", "Updates merged into a later DELTA."),
		conflationStarts:   d("conflation_starts_total", "Times a connection was switched to conflated delivery, by cause: staleness (its oldest message not yet taken by its socket older than --max-staleness), backlog (past --soft-limit), lag (its socket took nothing for --soft-lag).", "reason"),
		conflating:         d("conflating_connections", "Connections in conflated delivery now (see tickstream_conflation_starts_total)."),
		stuck:              d("stuck_connections", "Connections whose socket has taken nothing for --soft-lag (clients that stopped reading), taken off the publish path until it does or --slow-grace closes them."),
		dropped:            d("dropped_total", "Messages and pending deltas discarded undelivered when their connection closed (slow consumers, failed writes, clients gone)."),
		slow:               d("slow_consumer_closes_total", "Connections closed with 4008."),
		errs:               d("protocol_errors_total", "ERROR messages sent, by code.", "code"),
		published:          d("changes_published_total", "Store changes published to the fanout engine."),
		records:            d("ingest_records_total", "Kafka records decoded and applied."),
		rejected:           d("ingest_rejected_total", "Kafka records skipped, by reason.", "reason"),
		lag:                d("ingest_lag_records", "Records behind the end of the log, by partition.", "partition"),
		lagSecs:            d("ingest_lag_seconds", "Age of the last record read when behind, by partition.", "partition"),
		symbols:            d("symbols", "Symbols of the feed in the snapshot store."),
		reserved:           d("reserved_symbols", "Symbols without data yet (never sent by the feed) that clients hold: subscribed, or unsubscribed and kept for a re-SUB."),
		live:               d("feed_live", "1 when the feed is live: ingest reads every partition and is not catching up after an outage or a rebuild."),
		outages:            d("feed_outages_total", "Times the feed went stale (the brokers stopped answering)."),
		outageSecs:         d("feed_last_outage_seconds", "How long the last outage lasted, until the brokers answered again; 0 before the first."),
		catchUpSecs:        d("ingest_catchup_seconds", "How long ingest took after the last outage, from the brokers answering again to live; 0 before the first."),
		lost:               d("ingest_records_lost_total", "Records deleted from the log (retention) before ingest read them."),
		recreated:          d("ingest_log_recreated_total", "Partitions whose log was found to end before ingest's position (topic deleted and recreated): rebuilt from the log's start."),
		publishTime:        d("publish_seconds", "Time to hand one store change to every subscriber's outbound buffer, timed for one change in "+strconv.Itoa(fanout.PublishSample)+"."),
		publishAge:         d("publish_age_seconds", "Age of a change when the node publishes it, from its ts (the event time the feed gave it) to the node's clock, for the changes timed by publish_seconds: the delay of the producer, the brokers and ingest, plus any offset between the producer's clock and the node's."),
		barsLate:           d("bars_late_total", "Changes whose ts fell before the start of the symbol's newest bar, counted into that bar (bars never reopen), by interval.", "interval"),
		barsCapped:         d("bars_capped_total", "Bars that overwrote their symbol's oldest bar before its retention (or were dropped) because --bars-max-memory was reached."),
		barsBytes:          d("bars_memory_bytes", "Memory the bars of every symbol hold, at most --bars-max-memory."),
		writeWait:          d("write_wait_seconds", "Age of the oldest message of each write to a client when its socket took it: the time messages waited in the fanout engine, for a writer and for the write (to 2 ms)."),
		refused:            d("connections_refused_total", "Connections refused (WebSocket at the upgrade, plain HTTP at accept) or closed by a policy, by reason.", "reason"),
	}
}

// publishHistogram exports one of the hub's time histograms (publish
// time, write wait) in seconds, with the cumulative buckets Prometheus
// wants.
func publishHistogram(d *prometheus.Desc, h *fanout.Histogram) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	var below uint64
	for i, bound := range h.Bounds {
		below += h.Counts[i]
		buckets[bound.Seconds()] = below
	}
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum.Seconds(), buckets)
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	h := c.s.node.Hub().Stats()
	gauge(c.clients, float64(h.Clients))
	gauge(c.httpConns, float64(c.s.httpConns.count()))
	gauge(c.subs, float64(h.Subscriptions))
	counter(c.messages, float64(h.Messages))
	counter(c.bytes, float64(h.Bytes))
	counter(c.frames, float64(h.Frames))
	counter(c.conflated, float64(h.Conflated))
	gauge(c.stuck, float64(h.Stuck))
	for cause, n := range h.ConflationStarts {
		counter(c.conflationStarts, float64(n), fanout.ConflationCause(cause).String())
	}
	gauge(c.conflating, float64(h.Conflating))
	counter(c.dropped, float64(h.Dropped))
	counter(c.slow, float64(h.SlowCloses))
	counter(c.published, float64(h.Published))
	for code, n := range h.Errors {
		counter(c.errs, float64(n), strconv.Itoa(code))
	}
	ch <- publishHistogram(c.publishTime, &h.PublishTime)
	ch <- publishHistogram(c.publishAge, &h.PublishAge)
	ch <- publishHistogram(c.writeWait, &h.WriteWait)
	in := c.s.node.Ingest().Stats()
	counter(c.records, float64(in.Records))
	for reason, n := range in.Rejected {
		counter(c.rejected, float64(n), reason)
	}
	counter(c.outages, float64(in.Outages))
	gauge(c.outageSecs, in.LastOutage.Seconds())
	gauge(c.catchUpSecs, in.LastCatchUp.Seconds())
	counter(c.lost, float64(in.Lost))
	counter(c.recreated, float64(in.Recreated))
	for _, p := range in.Partitions {
		gauge(c.lag, float64(p.Lag), strconv.Itoa(p.Partition))
		gauge(c.lagSecs, p.LagSeconds, strconv.Itoa(p.Partition))
	}
	for reason, name := range refusalNames {
		counter(c.refused, float64(c.s.guard.refused[reason].Load()), name)
	}
	gauge(c.symbols, float64(c.s.node.Store().Len()))
	gauge(c.reserved, float64(c.s.node.Store().Reserved()))
	if c.s.node.Config().Checkpoint != "" {
		ck := c.s.node.CheckpointStats()
		saved := 0.0
		if !ck.LastSaved.IsZero() {
			saved = float64(ck.LastSaved.UnixNano()) / 1e9
		}
		gauge(c.checkpointTime, saved)
		counter(c.checkpointFailures, float64(ck.Failures))
	}
	if b := c.s.node.Bars(); b != nil {
		st := b.Stats()
		for i, iv := range b.Intervals() {
			counter(c.barsLate, float64(st.Late[i]), iv.Name)
		}
		counter(c.barsCapped, float64(st.Capped))
		gauge(c.barsBytes, float64(st.Bytes))
	}
	live := 0.0
	if c.s.node.Ingest().Live() {
		live = 1
	}
	gauge(c.live, live)
}
