//! One simulated responder: what a person with a handset does, as a pure state machine.
//!
//! No I/O and no clock of its own: every call takes `now`, and every random choice comes from a
//! seeded [`SplitMix64`], so the same seed and the same sequence of calls give the same
//! [`Action`]s on every machine. The async driver ([`crate::crew`]) feeds it the handset's
//! downlinks ([`Responder::on_downlink`]), calls [`Responder::tick`] at every step, and publishes
//! what comes back.
//!
//! # What a responder does
//!
//! - **Patrols** the street grid of its area ([`Route`]) at its kind's speed
//!   ([`UnitKind::speed_mps`]) and reports a fix every [`Behaviour::fix_interval`].
//! - **A work order** is receipted `DELIVERED` at once. Then the person decides (seeded): ignore
//!   it ([`Behaviour::never_answer`]), decline it ([`Behaviour::reject`]) or accept it, each after
//!   a human-like delay in [`Behaviour::accept_delay`]. Accepting sends `ACCEPTED` and `EN_ROUTE`
//!   and the responder travels to the scene at its speed along two straight legs (east-west, then
//!   north-south, as on a street grid); within [`Behaviour::arrival_radius_m`] of the scene it
//!   sends `ON_SCENE`, works there for a time in [`Behaviour::work_time`], sends `RESOLVED`, and
//!   patrols again from where it stands. A responder busy with a job, or on a break, declines a
//!   second order at once (`REJECTED`, "busy").
//! - `OrderCancelled` and `OrderReassigned` for its current order end the job on the spot;
//!   `OrderUpdated` with a new location re-plans the trip. Repeats of an order it already has
//!   (the server re-sends until the receipt) are answered with `DELIVERED` again while undecided,
//!   and ignored otherwise.
//! - **The same delivery twice** (a downlink whose `id` it has seen, e.g. an order that came over
//!   MQTT and over the handset's WebSocket, or a QoS 1 redelivery) is dropped and counted
//!   ([`Tally::duplicates`]): one delivery gets one answer. A re-send is a new delivery (the
//!   server's ids are `{order}/{attempt}`), so it is still answered as above.
//! - **Extras** ([`Behaviour::extras`], each at its own rate, 0 turns it off): a heartbeat every
//!   [`Behaviour::heartbeat_every`], duty status (on duty at the start, breaks), push-to-talk
//!   bursts (floor request, then release), video streams (started, keepalives, stopped), field
//!   reports, SOS, and going out of coverage: the responder keeps moving, its fixes are held
//!   back, and on return they go as one `GpsReport` with `buffered = true` (in batches of at most
//!   [`MAX_BATCH`]). Only a patrolling responder goes offline or on a break.
//! - The command room's video requests are answered (a stream starts with the request's id, or
//!   stops) whether or not extras are on.

use std::collections::VecDeque;
use std::time::Duration;

use fieldlink_clock::Timestamp;
use fieldlink_proto::{UnitId, v1};

use crate::route::{Bbox, M_PER_DEG, Route, SplitMix64, UnitKind};

/// Most fixes in one buffered batch (the server's default limit is 1,000 per report).
pub const MAX_BATCH: usize = 500;
/// Finished orders remembered, to ignore the server's late re-sends of them.
const REMEMBERED_ORDERS: usize = 64;
/// Downlink ids remembered, to drop the second copy of a delivery. Both copies of an order come
/// within moments of each other, so a short memory is enough.
const REMEMBERED_DELIVERIES: usize = 128;
/// Battery drain of a simulated handset, percent per hour.
const DRAIN_PCT_PER_HOUR: f64 = 8.0;

/// How a responder behaves. [`Behaviour::default`] is a plausible shift in town;
/// [`Behaviour::orders_only`] is what tests use.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    /// Where the responder patrols (default: Shangcheng district, Hangzhou).
    pub area: Bbox,
    /// Time between two fixes.
    pub fix_interval: Duration,
    /// Share of work orders never answered (beyond `DELIVERED`), 0..=1. Default 0.05.
    pub never_answer: f64,
    /// Share of work orders declined, 0..=1. Default 0.10.
    pub reject: f64,
    /// How long the person takes to accept or decline (uniform in the range). Default 5–40 s.
    pub accept_delay: (Duration, Duration),
    /// How long the work on scene takes before `RESOLVED`. Default 1–5 min.
    pub work_time: (Duration, Duration),
    /// Closer than this to the scene counts as arrived (`ON_SCENE`). Default 25 m.
    pub arrival_radius_m: f64,
    /// The random extras below at all. `false` leaves order handling and movement only.
    pub extras: bool,
    /// Time between heartbeats; zero: none. Default 60 s.
    pub heartbeat_every: Duration,
    /// Push-to-talk bursts per hour. Default 2.
    pub ptt_per_hour: f64,
    /// The talkgroup the bursts go to. Default "all".
    pub talkgroup: String,
    /// How long a burst holds the floor. Default 2–8 s.
    pub ptt_length: (Duration, Duration),
    /// Video streams started per hour. Default 0.5.
    pub video_per_hour: f64,
    /// How long a stream runs. Default 30 s – 3 min.
    pub video_length: (Duration, Duration),
    /// Time between a stream's keepalives. Default 5 s.
    pub video_keepalive: Duration,
    /// Field reports per hour. Default 0.2.
    pub field_reports_per_hour: f64,
    /// Coverage losses per hour. Default 0.5.
    pub offline_per_hour: f64,
    /// How long a coverage loss lasts. Default 20 s – 2 min.
    pub offline_length: (Duration, Duration),
    /// Breaks per hour. Default 0.2.
    pub breaks_per_hour: f64,
    /// How long a break lasts. Default 2–10 min.
    pub break_length: (Duration, Duration),
    /// SOS presses per hour. Default 0.
    pub sos_per_hour: f64,
}

impl Default for Behaviour {
    fn default() -> Self {
        let s = Duration::from_secs;
        Behaviour {
            area: Bbox::SHANGCHENG,
            fix_interval: s(1),
            never_answer: 0.05,
            reject: 0.10,
            accept_delay: (s(5), s(40)),
            work_time: (s(60), s(300)),
            arrival_radius_m: 25.0,
            extras: true,
            heartbeat_every: s(60),
            ptt_per_hour: 2.0,
            talkgroup: "all".to_owned(),
            ptt_length: (s(2), s(8)),
            video_per_hour: 0.5,
            video_length: (s(30), s(180)),
            video_keepalive: s(5),
            field_reports_per_hour: 0.2,
            offline_per_hour: 0.5,
            offline_length: (s(20), s(120)),
            breaks_per_hour: 0.2,
            break_length: (s(120), s(600)),
            sos_per_hour: 0.0,
        }
    }
}

impl Behaviour {
    /// Order handling and movement only: no extras, every order accepted after the default
    /// delay. Set [`Behaviour::never_answer`] or [`Behaviour::reject`] to 1.0 for a responder
    /// who never answers or always declines.
    pub fn orders_only() -> Self {
        Behaviour {
            never_answer: 0.0,
            reject: 0.0,
            extras: false,
            ..Behaviour::default()
        }
    }

    /// Every problem with these settings, in words.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let share = |v: f64| (0.0..=1.0).contains(&v);
        if !share(self.never_answer) || !share(self.reject) || self.never_answer + self.reject > 1.0
        {
            p.push(
                "never_answer and reject must be shares within 0..=1 and add up to 1 at most"
                    .into(),
            );
        }
        if self.fix_interval.is_zero() {
            p.push("fix_interval must be above zero".into());
        }
        for (name, (lo, hi)) in [
            ("accept_delay", self.accept_delay),
            ("work_time", self.work_time),
            ("ptt_length", self.ptt_length),
            ("video_length", self.video_length),
            ("offline_length", self.offline_length),
            ("break_length", self.break_length),
        ] {
            if lo > hi {
                p.push(format!(
                    "{name}: the shortest ({lo:?}) is longer than the longest ({hi:?})"
                ));
            }
        }
        let rates = [
            self.ptt_per_hour,
            self.video_per_hour,
            self.field_reports_per_hour,
            self.offline_per_hour,
            self.breaks_per_hour,
            self.sos_per_hour,
        ];
        if rates.iter().any(|r| !r.is_finite() || *r < 0.0) {
            p.push("rates per hour must be zero or more".into());
        }
        if self.arrival_radius_m.is_nan() || self.arrival_radius_m <= 0.0 {
            p.push("arrival_radius_m must be above zero".into());
        }
        p
    }
}

/// What the person decided about an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Takes it.
    Accept,
    /// Declines it.
    Reject,
    /// Never answers.
    Ignore,
}

/// Where a responder stands, as [`Responder::state`] shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponderState {
    /// Free, moving along its patrol route.
    Patrolling,
    /// An order came in; the person answers at `answer_at` (never, for [`Answer::Ignore`]).
    OrderOffered {
        /// The order.
        order_id: String,
        /// What the person will do.
        answer: Answer,
        /// When.
        answer_at: Timestamp,
    },
    /// Accepted and travelling to `to` (`lat, lon`).
    EnRoute {
        /// The order.
        order_id: String,
        /// The scene.
        to: (f64, f64),
    },
    /// Working on scene until `resolve_at`.
    OnScene {
        /// The order.
        order_id: String,
        /// When the work is done.
        resolve_at: Timestamp,
    },
    /// On a break until `until` (declines orders).
    OnBreak {
        /// End of the break.
        until: Timestamp,
    },
    /// Out of coverage until `until` (fixes are held back).
    Offline {
        /// Back in coverage then.
        until: Timestamp,
    },
}

/// What the driver should do: the uplinks to publish (the driver fills in each message's `id`,
/// `time_ms` and `unit`) and the connection changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// One fix, live (QoS 0).
    Fix(v1::GpsFix),
    /// Fixes held back while offline, oldest first: one `GpsReport` with `buffered = true`.
    BufferedFixes(Vec<v1::GpsFix>),
    /// A receipt for a work order (QoS 1).
    Receipt(v1::OrderReceipt),
    /// A heartbeat (`online = true`).
    Heartbeat(v1::StatusHeartbeat),
    /// A duty status change (a `Report` with `duty`).
    Duty(v1::DutyStatus),
    /// Floor control on `talkgroup`.
    Ptt {
        /// The talkgroup.
        talkgroup: String,
        /// Request, release or a burst record.
        action: v1::ptt_message::Action,
    },
    /// Video stream metadata.
    Video {
        /// The stream.
        stream_id: String,
        /// Started, keepalive or stopped.
        event: v1::video_message::Event,
    },
    /// A field report (a `Report` with `field_report`).
    FieldReport(v1::FieldReport),
    /// The emergency button.
    Sos(v1::Sos),
    /// Coverage lost: drop the connection without saying goodbye (the broker sends the will).
    GoOffline,
    /// Coverage is back: connect again (the buffered fixes follow).
    ComeBack,
}

/// What a responder has done so far, for progress reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Distinct work orders received.
    pub orders: u64,
    /// Orders accepted.
    pub accepted: u64,
    /// Orders declined after thinking it over.
    pub rejected: u64,
    /// Orders declined at once because busy or on a break.
    pub busy: u64,
    /// Orders never answered.
    pub ignored: u64,
    /// Arrivals on scene.
    pub arrived: u64,
    /// Jobs resolved.
    pub resolved: u64,
    /// Jobs ended by a cancel or a reassignment.
    pub withdrawn: u64,
    /// Coverage losses.
    pub offline: u64,
    /// Deliveries seen again and dropped (the same downlink id over a second channel).
    pub duplicates: u64,
}

/// Where the responder is heading for, and what for.
#[derive(Debug, Clone)]
struct Job {
    order_id: String,
    to: (f64, f64),
}

#[derive(Debug, Clone)]
enum Mode {
    Patrol,
    Offered {
        job: Job,
        answer: Answer,
        answer_at: Timestamp,
        /// An ignored order is forgotten then (the server reassigns it long before).
        give_up_at: Timestamp,
    },
    EnRoute {
        job: Job,
        from: (f64, f64),
        depart: Timestamp,
    },
    /// Arrived: it walks the last metres of the trip and stays at the scene.
    OnScene {
        job: Job,
        resolve_at: Timestamp,
        from: (f64, f64),
        depart: Timestamp,
    },
    OnBreak {
        until: Timestamp,
        at: (f64, f64),
    },
    Offline {
        until: Timestamp,
    },
}

/// A stream in progress.
#[derive(Debug, Clone)]
struct Stream {
    id: String,
    until: Timestamp,
    next_keepalive: Timestamp,
}

/// When each random extra happens next (`None`: never).
#[derive(Debug, Clone, Default)]
struct Schedule {
    heartbeat: Option<Timestamp>,
    ptt: Option<Timestamp>,
    video: Option<Timestamp>,
    report: Option<Timestamp>,
    offline: Option<Timestamp>,
    brk: Option<Timestamp>,
    sos: Option<Timestamp>,
}

/// One simulated responder. See the module docs.
#[derive(Debug, Clone)]
pub struct Responder {
    unit: UnitId,
    kind: UnitKind,
    behaviour: Behaviour,
    rng: SplitMix64,
    start: (f64, f64),
    /// The patrol route and its time zero (`None` until the first tick).
    patrol: Route,
    patrol_origin: Option<Timestamp>,
    mode: Mode,
    next_fix: Option<Timestamp>,
    schedule: Schedule,
    ptt_release_at: Option<Timestamp>,
    stream: Option<Stream>,
    streams_started: u64,
    buffer: Vec<v1::GpsFix>,
    done: VecDeque<String>,
    /// Ids of the latest downlinks, oldest first.
    deliveries: VecDeque<String>,
    tally: Tally,
    battery_pct: f64,
    accuracy_m: f32,
    satellites: u32,
    first_tick: Option<Timestamp>,
}

impl Responder {
    /// A responder of `kind` standing at `start` (`lat, lon`), patrolling from there.
    pub fn new(
        unit: UnitId,
        kind: UnitKind,
        start: (f64, f64),
        behaviour: Behaviour,
        seed: u64,
    ) -> Responder {
        let mut rng = SplitMix64(seed);
        let patrol = Route::starting_at(
            rng.next_u64(),
            behaviour.area,
            kind.speed_mps(),
            start.0,
            start.1,
        );
        let battery_pct = 40.0 + rng.below(61) as f64;
        let accuracy_m = 3.0 + rng.below(6) as f32;
        let satellites = 7 + rng.below(6) as u32;
        Responder {
            unit,
            kind,
            behaviour,
            rng,
            start,
            patrol,
            patrol_origin: None,
            mode: Mode::Patrol,
            next_fix: None,
            schedule: Schedule::default(),
            ptt_release_at: None,
            stream: None,
            streams_started: 0,
            buffer: Vec::new(),
            done: VecDeque::new(),
            deliveries: VecDeque::new(),
            tally: Tally::default(),
            battery_pct,
            accuracy_m,
            satellites,
            first_tick: None,
        }
    }

    /// The unit.
    pub fn unit(&self) -> &UnitId {
        &self.unit
    }

    /// How it moves.
    pub fn kind(&self) -> UnitKind {
        self.kind
    }

    /// Its behaviour.
    pub fn behaviour(&self) -> &Behaviour {
        &self.behaviour
    }

    /// What it has done so far.
    pub fn tally(&self) -> Tally {
        self.tally
    }

    /// Fixes held back while offline, not yet sent.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Where it stands now.
    pub fn state(&self) -> ResponderState {
        match &self.mode {
            Mode::Patrol => ResponderState::Patrolling,
            Mode::Offered {
                job,
                answer,
                answer_at,
                ..
            } => ResponderState::OrderOffered {
                order_id: job.order_id.clone(),
                answer: *answer,
                answer_at: *answer_at,
            },
            Mode::EnRoute { job, .. } => ResponderState::EnRoute {
                order_id: job.order_id.clone(),
                to: job.to,
            },
            Mode::OnScene {
                job, resolve_at, ..
            } => ResponderState::OnScene {
                order_id: job.order_id.clone(),
                resolve_at: *resolve_at,
            },
            Mode::OnBreak { until, .. } => ResponderState::OnBreak { until: *until },
            Mode::Offline { until } => ResponderState::Offline { until: *until },
        }
    }

    /// The order it is working on or thinking about, if any.
    pub fn current_order(&self) -> Option<&str> {
        match &self.mode {
            Mode::Offered { job, .. } | Mode::EnRoute { job, .. } | Mode::OnScene { job, .. } => {
                Some(&job.order_id)
            }
            _ => None,
        }
    }

    /// Where it is at `now`: `(lat, lon)`.
    pub fn position(&self, now: Timestamp) -> (f64, f64) {
        let p = self.motion(now);
        (p.0, p.1)
    }

    /// `(lat, lon, speed m/s, heading degrees)` at `now`.
    fn motion(&self, now: Timestamp) -> (f64, f64, f64, f64) {
        match &self.mode {
            Mode::Patrol | Mode::Offered { .. } | Mode::Offline { .. } => {
                match self.patrol_origin {
                    Some(origin) => {
                        let p = self.patrol.position_at(now.since(origin));
                        (p.lat, p.lon, p.speed_mps, p.heading_deg)
                    }
                    None => (self.start.0, self.start.1, 0.0, 0.0),
                }
            }
            Mode::EnRoute { job, from, depart }
            | Mode::OnScene {
                job, from, depart, ..
            } => travel(*from, job.to, self.kind.speed_mps(), now.since(*depart)),
            Mode::OnBreak { at, .. } => (at.0, at.1, 0.0, 0.0),
        }
    }

    /// A downlink addressed to this unit arrived at `now`.
    pub fn on_downlink(&mut self, now: Timestamp, downlink: &v1::Downlink) -> Vec<Action> {
        use v1::downlink::Body;
        let mut out = Vec::new();
        if self.seen_before(&downlink.id) {
            self.tally.duplicates += 1;
            return out;
        }
        match &downlink.body {
            Some(Body::Order(order)) => self.on_order(now, order, &mut out),
            Some(Body::OrderUpdated(u)) => {
                if self.current_order() == Some(u.order_id.as_str())
                    && let Some(to) = u.location.as_ref().map(|p| (p.lat, p.lon))
                {
                    let here = self.position(now);
                    match &mut self.mode {
                        Mode::EnRoute { job, from, depart } => {
                            job.to = to;
                            *from = here;
                            *depart = now;
                        }
                        Mode::Offered { job, .. } => job.to = to,
                        _ => {}
                    }
                }
            }
            Some(Body::OrderCancelled(c)) => self.withdraw(now, &c.order_id),
            Some(Body::OrderReassigned(r)) => self.withdraw(now, &r.order_id),
            Some(Body::Video(request)) => self.on_video_request(now, request, &mut out),
            Some(Body::Command(c)) if c.name == "locate_now" => {
                if !matches!(self.mode, Mode::Offline { .. }) {
                    out.push(Action::Fix(self.fix(now)));
                }
            }
            Some(Body::Floor(_)) | Some(Body::Command(_)) | None => {}
        }
        out
    }

    fn on_order(&mut self, now: Timestamp, order: &v1::WorkOrder, out: &mut Vec<Action>) {
        let id = order.order_id.as_str();
        if self.done.iter().any(|d| d == id) {
            return;
        }
        if self.current_order() == Some(id) {
            if matches!(self.mode, Mode::Offered { .. }) {
                out.push(self.receipt(now, id, v1::OrderState::Delivered, ""));
            }
            return;
        }
        self.tally.orders += 1;
        out.push(self.receipt(now, id, v1::OrderState::Delivered, ""));
        let Some(to) = order.location.as_ref().map(|p| (p.lat, p.lon)) else {
            self.tally.busy += 1;
            self.remember(id);
            out.push(self.receipt(
                now,
                id,
                v1::OrderState::Rejected,
                "the order has no location",
            ));
            return;
        };
        if !matches!(self.mode, Mode::Patrol) {
            self.tally.busy += 1;
            self.remember(id);
            let why = match self.mode {
                Mode::OnBreak { .. } => "on a break",
                _ => "busy with another job",
            };
            out.push(self.receipt(now, id, v1::OrderState::Rejected, why));
            return;
        }
        let b = &self.behaviour;
        let (never, reject, delay) = (b.never_answer, b.reject, b.accept_delay);
        let r = self.rng.unit();
        let answer = if r < never {
            Answer::Ignore
        } else if r < never + reject {
            Answer::Reject
        } else {
            Answer::Accept
        };
        let answer_at = now.plus(self.rng.between(delay));
        if answer == Answer::Ignore {
            self.tally.ignored += 1;
        }
        let give_up_at = if order.accept_by_ms > 0 {
            Timestamp::from_millis(order.accept_by_ms).plus(Duration::from_secs(60))
        } else {
            now.plus(Duration::from_secs(300))
        };
        self.mode = Mode::Offered {
            job: Job {
                order_id: id.to_owned(),
                to,
            },
            answer,
            answer_at,
            give_up_at: give_up_at.max(answer_at),
        };
    }

    /// The current order `order_id` is cancelled or reassigned: back on patrol from here.
    fn withdraw(&mut self, now: Timestamp, order_id: &str) {
        if self.current_order() != Some(order_id) {
            return;
        }
        self.tally.withdrawn += 1;
        self.remember(order_id);
        self.patrol_from_here(now);
    }

    fn on_video_request(
        &mut self,
        now: Timestamp,
        request: &v1::VideoRequest,
        out: &mut Vec<Action>,
    ) {
        if matches!(self.mode, Mode::Offline { .. }) {
            return;
        }
        match &request.action {
            Some(v1::video_request::Action::Start(_)) => {
                if let Some(s) = self.stream.take() {
                    out.push(stop(&s.id, "another stream was requested"));
                }
                let length = self.rng.between(self.behaviour.video_length);
                out.push(self.start_stream(now, length, &request.request_id));
            }
            Some(v1::video_request::Action::Stop(s)) => {
                let ours = |own: &Stream| s.stream_id.is_empty() || own.id == s.stream_id;
                if let Some(own) = self.stream.take_if(|own| ours(own)) {
                    out.push(stop(&own.id, "requested"));
                }
            }
            None => {}
        }
    }

    /// One step at `now`: answers, movement, arrivals, fixes and the extras that are due.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Action> {
        let mut out = Vec::new();
        if self.first_tick.is_none() {
            self.first_tick = Some(now);
            self.patrol_origin = Some(now);
            self.plan(now);
            if self.behaviour.extras {
                out.push(Action::Duty(v1::DutyStatus::OnDuty));
            }
        }
        self.advance(now, &mut out);
        if self.next_fix.is_none_or(|t| now >= t) {
            let fix = self.fix(now);
            if matches!(self.mode, Mode::Offline { .. }) {
                self.buffer.push(fix);
            } else {
                out.push(Action::Fix(fix));
            }
            self.next_fix = Some(now.plus(self.behaviour.fix_interval));
        }
        if self.behaviour.extras && !matches!(self.mode, Mode::Offline { .. }) {
            self.extras(now, &mut out);
        }
        out
    }

    /// Schedules the extras from `now`.
    fn plan(&mut self, now: Timestamp) {
        if !self.behaviour.extras {
            return;
        }
        let b = self.behaviour.clone();
        self.schedule = Schedule {
            heartbeat: (!b.heartbeat_every.is_zero()).then(|| now.plus(b.heartbeat_every)),
            ptt: self.after(now, b.ptt_per_hour),
            video: self.after(now, b.video_per_hour),
            report: self.after(now, b.field_reports_per_hour),
            offline: self.after(now, b.offline_per_hour),
            brk: self.after(now, b.breaks_per_hour),
            sos: self.after(now, b.sos_per_hour),
        };
    }

    /// The order and state transitions due at `now`.
    fn advance(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        match self.mode.clone() {
            Mode::Patrol => {}
            Mode::Offered {
                job,
                answer,
                answer_at,
                give_up_at,
            } => match answer {
                Answer::Accept if now >= answer_at => {
                    self.tally.accepted += 1;
                    out.push(self.receipt(now, &job.order_id, v1::OrderState::Accepted, ""));
                    out.push(self.receipt(now, &job.order_id, v1::OrderState::EnRoute, ""));
                    let from = self.position(now);
                    self.mode = Mode::EnRoute {
                        job,
                        from,
                        depart: now,
                    };
                    // An order next door is reached at once.
                    self.advance(now, out);
                }
                Answer::Reject if now >= answer_at => {
                    self.tally.rejected += 1;
                    self.remember(&job.order_id);
                    let why = "cannot take it now";
                    out.push(self.receipt(now, &job.order_id, v1::OrderState::Rejected, why));
                    self.mode = Mode::Patrol;
                }
                Answer::Ignore if now >= give_up_at => {
                    self.remember(&job.order_id);
                    self.mode = Mode::Patrol;
                }
                _ => {}
            },
            Mode::EnRoute { job, from, depart } => {
                let here = self.position(now);
                if distance_m(here, job.to) <= self.behaviour.arrival_radius_m {
                    self.tally.arrived += 1;
                    out.push(self.receipt(now, &job.order_id, v1::OrderState::OnScene, ""));
                    let resolve_at = now.plus(self.rng.between(self.behaviour.work_time));
                    self.mode = Mode::OnScene {
                        job,
                        resolve_at,
                        from,
                        depart,
                    };
                }
            }
            Mode::OnScene {
                job, resolve_at, ..
            } => {
                if now >= resolve_at {
                    self.tally.resolved += 1;
                    let note = "resolved on scene";
                    out.push(self.receipt(now, &job.order_id, v1::OrderState::Resolved, note));
                    self.remember(&job.order_id);
                    self.patrol_from_here(now);
                }
            }
            Mode::OnBreak { until, .. } => {
                if now >= until {
                    out.push(Action::Duty(v1::DutyStatus::OnDuty));
                    self.patrol_from_here(now);
                }
            }
            Mode::Offline { until } => {
                if now >= until {
                    self.mode = Mode::Patrol;
                    out.push(Action::ComeBack);
                    let held = std::mem::take(&mut self.buffer);
                    for chunk in held.chunks(MAX_BATCH) {
                        out.push(Action::BufferedFixes(chunk.to_vec()));
                    }
                    // Heartbeats and the rest resume from now, not all at once.
                    self.plan(now);
                }
            }
        }
    }

    /// The random extras due at `now` (online only).
    fn extras(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        let b = self.behaviour.clone();
        if due(self.schedule.heartbeat, now) {
            self.schedule.heartbeat = Some(now.plus(b.heartbeat_every));
            out.push(Action::Heartbeat(self.heartbeat(now)));
        }
        if let Some(at) = self.ptt_release_at {
            if now >= at {
                self.ptt_release_at = None;
                out.push(Action::Ptt {
                    talkgroup: b.talkgroup.clone(),
                    action: v1::ptt_message::Action::Release(v1::FloorRelease {}),
                });
            }
        } else if due(self.schedule.ptt, now) {
            self.schedule.ptt = self.after(now, b.ptt_per_hour);
            self.ptt_release_at = Some(now.plus(self.rng.between(b.ptt_length)));
            out.push(Action::Ptt {
                talkgroup: b.talkgroup.clone(),
                action: v1::ptt_message::Action::Request(v1::FloorRequest {
                    priority: v1::FloorPriority::Normal as i32,
                }),
            });
        }
        if let Some(s) = &mut self.stream {
            if now >= s.until {
                let id = s.id.clone();
                self.stream = None;
                out.push(stop(&id, "user"));
            } else if now >= s.next_keepalive {
                s.next_keepalive = now.plus(b.video_keepalive);
                out.push(Action::Video {
                    stream_id: s.id.clone(),
                    event: v1::video_message::Event::Keepalive(v1::VideoKeepalive {
                        bitrate_kbps: Some(1500),
                        fps: Some(25.0),
                    }),
                });
            }
        } else if due(self.schedule.video, now) {
            self.schedule.video = self.after(now, b.video_per_hour);
            let length = self.rng.between(b.video_length);
            out.push(self.start_stream(now, length, ""));
        }
        if due(self.schedule.report, now) {
            self.schedule.report = self.after(now, b.field_reports_per_hour);
            out.push(Action::FieldReport(self.field_report(now)));
        }
        if due(self.schedule.sos, now) {
            self.schedule.sos = self.after(now, b.sos_per_hour);
            out.push(Action::Sos(v1::Sos {
                position: Some(self.fix(now)),
                note: "simulated SOS".to_owned(),
                ..Default::default()
            }));
        }
        if matches!(self.mode, Mode::Patrol) && due(self.schedule.offline, now) {
            self.schedule.offline = self.after(now, b.offline_per_hour);
            self.tally.offline += 1;
            let until = now.plus(self.rng.between(b.offline_length));
            // What was in progress on the handset ends with the connection.
            self.stream = None;
            self.ptt_release_at = None;
            self.mode = Mode::Offline { until };
            out.push(Action::GoOffline);
        } else if matches!(self.mode, Mode::Patrol) && due(self.schedule.brk, now) {
            self.schedule.brk = self.after(now, b.breaks_per_hour);
            let until = now.plus(self.rng.between(b.break_length));
            let at = self.position(now);
            self.mode = Mode::OnBreak { until, at };
            out.push(Action::Duty(v1::DutyStatus::OnBreak));
        }
    }

    fn start_stream(&mut self, now: Timestamp, length: Duration, request_id: &str) -> Action {
        self.streams_started += 1;
        let id = format!("{}-cam-{}", self.unit, self.streams_started);
        self.stream = Some(Stream {
            id: id.clone(),
            until: now.plus(length),
            next_keepalive: now.plus(self.behaviour.video_keepalive),
        });
        Action::Video {
            stream_id: id.clone(),
            event: v1::video_message::Event::Started(v1::VideoStarted {
                info: Some(v1::StreamInfo {
                    codec: "h264".to_owned(),
                    width: 1280,
                    height: 720,
                    fps: 25.0,
                    bitrate_kbps: 1500,
                    play_urls: vec![v1::PlayUrl {
                        protocol: v1::PlayProtocol::Rtsp as i32,
                        url: format!("rtsp://sim.invalid/{id}"),
                    }],
                    ..Default::default()
                }),
                request_id: request_id.to_owned(),
            }),
        }
    }

    fn field_report(&mut self, now: Timestamp) -> v1::FieldReport {
        const KINDS: [(v1::IncidentKind, &str); 5] = [
            (v1::IncidentKind::Traffic, "car blocking a bus lane"),
            (v1::IncidentKind::Dispute, "argument outside a shop"),
            (v1::IncidentKind::Flooding, "water on the road after rain"),
            (v1::IncidentKind::Other, "broken street light"),
            (v1::IncidentKind::Medical, "elderly person feeling unwell"),
        ];
        let (kind, text) = KINDS[self.rng.below(KINDS.len() as u64) as usize];
        let (lat, lon) = self.position(now);
        v1::FieldReport {
            kind: kind as i32,
            text: text.to_owned(),
            position: Some(v1::Position {
                lat,
                lon,
                alt_m: None,
                accuracy_m: Some(self.accuracy_m),
            }),
            media_urls: vec![],
            priority: v1::Priority::Normal as i32,
        }
    }

    fn heartbeat(&self, now: Timestamp) -> v1::StatusHeartbeat {
        v1::StatusHeartbeat {
            online: true,
            battery_pct: Some(self.battery(now) as f32),
            signal_dbm: Some(-70),
            network: v1::NetworkType::Cellular4g as i32,
            mode: v1::DeviceMode::Normal as i32,
            firmware: "fieldlink-sim".to_owned(),
            ..Default::default()
        }
    }

    fn battery(&self, now: Timestamp) -> f64 {
        let hours = self
            .first_tick
            .map_or(0.0, |t| now.since(t).as_secs_f64() / 3600.0);
        (self.battery_pct - hours * DRAIN_PCT_PER_HOUR).max(5.0)
    }

    /// The fix at `now` (its `seq` is left to the handset).
    fn fix(&self, now: Timestamp) -> v1::GpsFix {
        let (lat, lon, speed, heading) = self.motion(now);
        v1::GpsFix {
            fix_time_ms: now.as_millis(),
            lat,
            lon,
            alt_m: Some(8.0),
            accuracy_m: Some(self.accuracy_m),
            speed_mps: Some(speed as f32),
            heading_deg: Some(heading as f32),
            satellites: self.satellites,
            source: v1::FixSource::Gnss as i32,
            battery_pct: Some(self.battery(now) as f32),
            seq: 0,
        }
    }

    fn receipt(&self, now: Timestamp, order: &str, state: v1::OrderState, reason: &str) -> Action {
        Action::Receipt(v1::OrderReceipt {
            order_id: order.to_owned(),
            state: state as i32,
            reason: reason.to_owned(),
            position: Some(self.fix(now)),
        })
    }

    /// Whether a downlink with this id came before; remembers it. Downlinks without an id are
    /// never duplicates.
    fn seen_before(&mut self, id: &str) -> bool {
        if id.is_empty() {
            return false;
        }
        if self.deliveries.iter().any(|d| d == id) {
            return true;
        }
        if self.deliveries.len() == REMEMBERED_DELIVERIES {
            self.deliveries.pop_front();
        }
        self.deliveries.push_back(id.to_owned());
        false
    }

    fn remember(&mut self, order: &str) {
        if self.done.len() == REMEMBERED_ORDERS {
            self.done.pop_front();
        }
        self.done.push_back(order.to_owned());
    }

    /// Back on patrol: a new route from where it stands.
    fn patrol_from_here(&mut self, now: Timestamp) {
        let (lat, lon) = self.position(now);
        let seed = self.rng.next_u64();
        self.patrol =
            Route::starting_at(seed, self.behaviour.area, self.kind.speed_mps(), lat, lon);
        self.patrol_origin = Some(now);
        self.mode = Mode::Patrol;
    }

    /// The next time of an event that happens `per_hour` times an hour (Poisson), from `now`.
    fn after(&mut self, now: Timestamp, per_hour: f64) -> Option<Timestamp> {
        if per_hour.is_nan() || per_hour <= 0.0 {
            return None;
        }
        let u = self.rng.unit();
        let secs = -(1.0 - u).ln() * 3600.0 / per_hour;
        Some(now.plus(Duration::from_secs_f64(secs.min(1e9))))
    }
}

fn due(at: Option<Timestamp>, now: Timestamp) -> bool {
    at.is_some_and(|t| now >= t)
}

fn stop(stream_id: &str, reason: &str) -> Action {
    Action::Video {
        stream_id: stream_id.to_owned(),
        event: v1::video_message::Event::Stopped(v1::VideoStopped {
            reason: reason.to_owned(),
        }),
    }
}

/// Metres east and north of `a` to `b` (local flat approximation, fine within a city).
fn offset_m(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    let east = (b.1 - a.1) * M_PER_DEG * a.0.to_radians().cos();
    let north = (b.0 - a.0) * M_PER_DEG;
    (east, north)
}

/// Straight-line distance in metres.
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (e, n) = offset_m(a, b);
    e.hypot(n)
}

/// Where a trip from `from` to `to` (east-west first, then north-south) stands after `t` at
/// `speed`: `(lat, lon, speed, heading)`; at `to` (standing) once done.
fn travel(from: (f64, f64), to: (f64, f64), speed: f64, t: Duration) -> (f64, f64, f64, f64) {
    let (east, north) = offset_m(from, to);
    let (leg1, leg2) = (east.abs(), north.abs());
    let d = speed * t.as_secs_f64();
    if d < leg1 {
        let f = d / leg1;
        let heading = if east >= 0.0 { 90.0 } else { 270.0 };
        (from.0, from.1 + (to.1 - from.1) * f, speed, heading)
    } else if d < leg1 + leg2 {
        let f = (d - leg1) / leg2;
        let heading = if north >= 0.0 { 0.0 } else { 180.0 };
        (from.0 + (to.0 - from.0) * f, to.1, speed, heading)
    } else {
        (to.0, to.1, 0.0, 0.0)
    }
}

impl SplitMix64 {
    /// A number in `0..1`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A duration in `lo..=hi`, millisecond resolution.
    pub fn between(&mut self, (lo, hi): (Duration, Duration)) -> Duration {
        let span = hi.saturating_sub(lo).as_millis() as u64;
        lo + Duration::from_millis(self.below(span + 1))
    }
}

#[cfg(test)]
#[path = "responder/tests.rs"]
mod tests;
