-- The 0.9 MySQL tables the daemon reads definitions from, with the columns, keys and
-- indexes Tracardi declares (SQLAlchemy String(n) = VARCHAR(n), Boolean = BOOL, JSON = JSON,
-- which MariaDB keeps as LONGTEXT). Index names follow SQLAlchemy's ix_<table>_<column>.
-- Statements are separated by semicolons at line ends; comments hold none.

CREATE TABLE event_to_profile_mapping (
  id VARCHAR(40) NOT NULL,
  name VARCHAR(128),
  description TEXT,
  event_type_id VARCHAR(40),
  event_type_name VARCHAR(128),
  tags VARCHAR(255),
  enabled BOOL,
  config JSON,
  event_to_profile JSON,
  tenant VARCHAR(40) NOT NULL,
  production BOOL NOT NULL,
  PRIMARY KEY (id, tenant, production)
);

-- uiq_event_type spans event_type alone, not tenant and production: as declared
CREATE TABLE event_mapping (
  id VARCHAR(40) NOT NULL,
  name VARCHAR(128),
  description TEXT,
  event_type VARCHAR(64),
  tags VARCHAR(128),
  journey VARCHAR(64),
  enabled BOOL,
  index_schema JSON,
  tenant VARCHAR(40) NOT NULL,
  production BOOL NOT NULL,
  PRIMARY KEY (id, tenant, production),
  CONSTRAINT uiq_event_type UNIQUE (event_type)
);

CREATE TABLE workflow_trigger (
  id VARCHAR(40) NOT NULL,
  name VARCHAR(150),
  description VARCHAR(255),
  type VARCHAR(64),
  metadata_time_insert DATETIME,
  event_type_id VARCHAR(40),
  event_type_name VARCHAR(64),
  flow_id VARCHAR(40),
  flow_name VARCHAR(64),
  segment_id VARCHAR(40),
  segment_name VARCHAR(64),
  source_id VARCHAR(40),
  source_name VARCHAR(64),
  properties JSON,
  enabled BOOL,
  tags VARCHAR(255),
  tenant VARCHAR(40) NOT NULL,
  production BOOL NOT NULL,
  PRIMARY KEY (id, tenant, production),
  INDEX ix_workflow_trigger_name (name),
  INDEX ix_workflow_trigger_flow_id (flow_id),
  INDEX ix_workflow_trigger_segment_id (segment_id),
  INDEX ix_workflow_trigger_source_id (source_id),
  INDEX ix_workflow_trigger_tags (tags)
);

CREATE TABLE `import` (
  id VARCHAR(40) NOT NULL,
  name VARCHAR(128),
  description TEXT,
  module VARCHAR(255),
  config JSON,
  enabled BOOL,
  transitional BOOL,
  api_url VARCHAR(255),
  event_source_id VARCHAR(40),
  event_source_name VARCHAR(128),
  event_type VARCHAR(128),
  tenant VARCHAR(40) NOT NULL,
  production BOOL NOT NULL,
  PRIMARY KEY (id, tenant, production)
);

CREATE TABLE task (
  id VARCHAR(40) NOT NULL,
  timestamp DATETIME,
  status VARCHAR(64),
  name VARCHAR(128),
  type VARCHAR(64),
  progress FLOAT,
  task_id VARCHAR(40),
  params JSON,
  message TEXT,
  tenant VARCHAR(40) NOT NULL,
  production BOOL NOT NULL,
  PRIMARY KEY (id, tenant, production)
);

CREATE TABLE resource (
  id VARCHAR(40) NOT NULL,
  tenant VARCHAR(40) NOT NULL,
  production BOOL NOT NULL,
  type VARCHAR(48),
  timestamp DATETIME,
  name VARCHAR(64),
  description VARCHAR(255),
  credentials TEXT,
  enabled BOOL,
  tags VARCHAR(255),
  `groups` VARCHAR(255),
  icon VARCHAR(255),
  destination VARCHAR(255),
  PRIMARY KEY (id, tenant, production),
  INDEX ix_resource_name (name),
  INDEX ix_resource_tags (tags)
);
