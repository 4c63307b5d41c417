-- The reason code of a NOT_READY agent event (BREAK, LUNCH, ...; cc.agent.events schema 104),
-- '' in every other state and for events written with schema 102.
ALTER TABLE {database}.agent_events ADD COLUMN reason String AFTER chat_concurrency
