"""Every Kafka topic name ccpulse reads or writes: the one home of these names.

The topics' partitions, keys, schemas and configs are their contracts
(schemas/topics/*.yaml, loaded by ``topic_contracts``); a contract test checks that every
name here has a contract and every contract a name here.
"""

from __future__ import annotations

# inputs: the contact centre's events (keyed by region; co-partitioned)
CONTACT_TOPIC = "cc.contact.events"
AGENT_TOPIC = "cc.agent.events"
SURVEY_TOPIC = "cc.survey.events"
INPUT_TOPICS = (CONTACT_TOPIC, AGENT_TOPIC, SURVEY_TOPIC)

# outputs of the stream jobs
SNAPSHOT_TOPIC = "cc.kpi.snapshots"  # KPI windows per region x channel (compacted, versioned)
QUEUE_STATE_TOPIC = "cc.queue.state"  # queue state per region x queue (compacted; routing's global view)
DECISIONS_TOPIC = "cc.routing.decisions"  # one routing decision per arrival
ALERTS_TOPIC = "cc.alerts"  # symptom alerts as they fire and resolve

# planning
PLAN_TOPIC = "cc.staffing.plan"  # the published staffing plan (compacted)

# what could not be processed, with its reason (identities withheld)
DEAD_LETTER_TOPIC = "cc.dead-letter"

ALL_TOPICS = (*INPUT_TOPICS, SNAPSHOT_TOPIC, QUEUE_STATE_TOPIC, DECISIONS_TOPIC, ALERTS_TOPIC, PLAN_TOPIC,
              DEAD_LETTER_TOPIC)  # fmt: skip
