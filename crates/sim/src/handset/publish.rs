//! What a handset sends: GPS fixes and batches, heartbeats, OwnTracks JSON and raw payloads.
//!
//! Each message gets a unique `id` (`{unit}-{session}-{n}`) and `time_ms` from the handset's
//! clock, and the `unit` field of its topic. The methods return the message as it went out, so
//! tests can compare what the server reports with exactly what was sent.

use std::sync::atomic::Ordering;

use fieldlink_clock::Timestamp;
use fieldlink_proto::{UplinkKind, v1};
use rumqttc::QoS;
use tokio::time::timeout;

use super::Handset;
use crate::SimError;

impl Handset {
    /// A fresh message id, unique for this unit (also across reconnects).
    pub fn new_id(&self) -> String {
        let n = self.next_msg.fetch_add(1, Ordering::Relaxed);
        format!("{}-{:08x}-{n}", self.cfg.unit, self.session)
    }

    /// The handset's current time.
    pub fn now(&self) -> Timestamp {
        self.cfg.clock.now()
    }

    /// Publishes one fix at QoS 0 (as handsets send GPS over cellular radio). `Ok` means the
    /// request was queued on a live connection, not that the broker has it.
    /// A fix whose `seq` is 0 gets the handset's next fix number.
    pub async fn publish_fix(&self, fix: v1::GpsFix) -> Result<v1::GpsReport, SimError> {
        self.publish_gps(vec![fix], false, QoS::AtMostOnce).await
    }

    /// Publishes one fix at QoS 1 and waits for the broker's PUBACK.
    pub async fn publish_fix_qos1(&self, fix: v1::GpsFix) -> Result<v1::GpsReport, SimError> {
        self.publish_gps(vec![fix], false, QoS::AtLeastOnce).await
    }

    /// Publishes a batch (oldest first; `buffered` when held back while out of coverage) at
    /// QoS 1 and waits for the PUBACK: a batch is what a handset could not afford to lose.
    pub async fn publish_batch(
        &self,
        fixes: Vec<v1::GpsFix>,
        buffered: bool,
    ) -> Result<v1::GpsReport, SimError> {
        self.publish_gps(fixes, buffered, QoS::AtLeastOnce).await
    }

    /// Publishes a `GpsReport` with `fixes` at `qos`, waiting for the acknowledgement when
    /// `qos` is above 0.
    pub async fn publish_gps(
        &self,
        mut fixes: Vec<v1::GpsFix>,
        buffered: bool,
        qos: QoS,
    ) -> Result<v1::GpsReport, SimError> {
        for fix in fixes.iter_mut().filter(|f| f.seq == 0) {
            fix.seq = self.next_fix_seq.fetch_add(1, Ordering::Relaxed);
        }
        let report = v1::GpsReport {
            id: self.new_id(),
            time_ms: self.now().as_millis(),
            unit: self.cfg.unit.to_string(),
            fixes,
            buffered,
        };
        self.publish_uplink(UplinkKind::Gps, &report, qos).await?;
        Ok(report)
    }

    /// Publishes a heartbeat at QoS 1 and waits for the PUBACK. `id`, `time_ms` and `unit` are
    /// filled in when empty; the rest is the caller's.
    pub async fn publish_status(
        &self,
        mut status: v1::StatusHeartbeat,
    ) -> Result<v1::StatusHeartbeat, SimError> {
        if status.id.is_empty() {
            status.id = self.new_id();
        }
        if status.time_ms == 0 {
            status.time_ms = self.now().as_millis();
        }
        if status.unit.is_empty() {
            status.unit = self.cfg.unit.to_string();
        }
        self.publish_uplink(UplinkKind::Status, &status, QoS::AtLeastOnce)
            .await?;
        Ok(status)
    }

    /// Publishes any uplink message on the unit's topic of `kind` (the caller sets its `id`,
    /// `time_ms` and `unit`; see [`Handset::new_id`] and [`Handset::now`]).
    pub async fn publish_uplink(
        &self,
        kind: UplinkKind,
        message: &impl prost::Message,
        qos: QoS,
    ) -> Result<(), SimError> {
        let topic = self.cfg.topics.uplink(&self.cfg.unit, kind);
        self.publish_raw(&topic, message.encode_to_vec(), qos).await
    }

    /// Publishes an OwnTracks `_type: location` (as the stock app does: QoS 1, on
    /// `{owntracks}/{unit}/{device}`) and waits for the PUBACK. Returns the JSON sent.
    pub async fn publish_owntracks(
        &self,
        device: &str,
        lat: f64,
        lon: f64,
        tst_secs: i64,
        acc: f64,
    ) -> Result<serde_json::Value, SimError> {
        let json = serde_json::json!({
            "_type": "location",
            "lat": lat,
            "lon": lon,
            "tst": tst_secs,
            "acc": acc,
            "tid": tracker_id(self.cfg.unit.as_str()),
            "t": "t",
            "conn": "m",
            "created_at": self.now().as_millis() / 1000,
        });
        let topic = self.cfg.topics.owntracks(&self.cfg.unit, device);
        self.publish_raw(&topic, json.to_string().into_bytes(), QoS::AtLeastOnce)
            .await?;
        Ok(json)
    }

    /// Publishes `payload` on any `topic` (tests of bad input use it), sealed for that topic
    /// when the handset seals ([`Handset::seal`]). At QoS 1 or 2 it returns once the broker
    /// acknowledged, or fails with [`SimError::AckTimeout`] or [`SimError::Disconnected`]; at
    /// QoS 0 once the request is queued on a live connection.
    pub async fn publish_raw(
        &self,
        topic: &str,
        payload: Vec<u8>,
        qos: QoS,
    ) -> Result<(), SimError> {
        let payload = self.seal(topic, payload);
        self.publish_bytes(topic, payload, qos).await
    }

    /// `payload` as this handset would send it on `topic`: sealed with its unit's key and a
    /// fresh counter, or unchanged when it does not seal. Tests replay what it returns.
    pub fn seal(&self, topic: &str, payload: Vec<u8>) -> Vec<u8> {
        match &self.sealer {
            Some(sealer) => sealer.seal(topic, &payload),
            None => payload,
        }
    }

    /// Publishes exactly `payload` on `topic`, never sealed (tests of unsealed and replayed
    /// payloads use it); acknowledged as [`Handset::publish_raw`].
    pub async fn publish_bytes(
        &self,
        topic: &str,
        payload: Vec<u8>,
        qos: QoS,
    ) -> Result<(), SimError> {
        let waiter = {
            let _order = self.send_lock.lock().await;
            let waiter = if qos == QoS::AtMostOnce {
                if self.lock_acks().closed().is_some() {
                    return Err(self.disconnected());
                }
                None
            } else {
                let registered = self.lock_acks().register();
                Some(registered.map_err(|reason| SimError::Disconnected {
                    unit: self.cfg.unit.clone(),
                    reason,
                })?)
            };
            self.client
                .publish(topic, qos, false, payload)
                .await
                .map_err(|_| self.disconnected())?;
            waiter
        };
        let Some(waiter) = waiter else {
            return Ok(());
        };
        match timeout(self.cfg.ack_timeout, waiter).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(reason))) => Err(SimError::Disconnected {
                unit: self.cfg.unit.clone(),
                reason,
            }),
            // The tracker dropped the waiter: the event loop is gone.
            Ok(Err(_)) => Err(self.disconnected()),
            Err(_) => Err(SimError::AckTimeout {
                unit: self.cfg.unit.clone(),
                topic: topic.to_owned(),
                after: self.cfg.ack_timeout,
            }),
        }
    }
}

/// The OwnTracks tracker id (two characters shown on the map): the unit id's last two.
fn tracker_id(unit: &str) -> String {
    let chars: Vec<char> = unit.chars().collect();
    chars[chars.len().saturating_sub(2)..].iter().collect()
}
