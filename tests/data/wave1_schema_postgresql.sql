-- The schema of a hookshop database made before migrations (wave 1: `hookshop init` ran
-- db.create_all() with every bundled plugin), postgresql, as create_all emitted it at the commit
-- that introduced migrations (what the database stored: `%` unescaped). tests/test_migrations.py adopts
-- it. Statements end with a line `-- ;`.

CREATE TABLE api_keys (
	id SERIAL NOT NULL,
	name VARCHAR(100) NOT NULL,
	prefix VARCHAR(16) NOT NULL,
	key_hash VARCHAR(64) NOT NULL,
	scopes VARCHAR(100) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	revoked_at TIMESTAMP WITH TIME ZONE,
	CONSTRAINT pk_api_keys PRIMARY KEY (id),
	CONSTRAINT uq_api_keys_key_hash UNIQUE (key_hash)
)
-- ;

CREATE TABLE staff_users (
	id SERIAL NOT NULL,
	email VARCHAR(254) NOT NULL,
	role VARCHAR(32) NOT NULL,
	password_hash VARCHAR(255) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_staff_users PRIMARY KEY (id),
	CONSTRAINT uq_staff_users_email UNIQUE (email)
)
-- ;

CREATE TABLE products (
	id SERIAL NOT NULL,
	sku VARCHAR(64) NOT NULL,
	name VARCHAR(200) NOT NULL,
	price INTEGER NOT NULL,
	currency VARCHAR(3) NOT NULL,
	barcode VARCHAR(64),
	track_serials BOOLEAN NOT NULL,
	allow_backorder BOOLEAN NOT NULL,
	reorder_point INTEGER NOT NULL,
	reorder_quantity INTEGER NOT NULL,
	weight_grams INTEGER NOT NULL,
	unit_cost INTEGER,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_products PRIMARY KEY (id),
	CONSTRAINT ck_products_price_not_negative CHECK (price >= 0),
	CONSTRAINT ck_products_weight_not_negative CHECK (weight_grams >= 0),
	CONSTRAINT uq_products_sku UNIQUE (sku),
	CONSTRAINT uq_products_barcode UNIQUE (barcode)
)
-- ;

CREATE TABLE customers (
	id SERIAL NOT NULL,
	email VARCHAR(254) NOT NULL,
	name VARCHAR(200) NOT NULL,
	phone VARCHAR(40),
	addresses JSONB NOT NULL,
	preferences JSONB NOT NULL,
	order_count INTEGER NOT NULL,
	total_spent INTEGER NOT NULL,
	currency VARCHAR(3),
	vip BOOLEAN NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_customers PRIMARY KEY (id),
	CONSTRAINT uq_customers_email UNIQUE (email)
)
-- ;

CREATE TABLE outbox_events (
	id SERIAL NOT NULL,
	hook VARCHAR(64) NOT NULL,
	payload JSONB NOT NULL,
	status VARCHAR(16) NOT NULL,
	attempts INTEGER NOT NULL,
	done_plugins JSONB NOT NULL,
	last_error TEXT,
	next_attempt_at TIMESTAMP WITH TIME ZONE NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	processed_at TIMESTAMP WITH TIME ZONE,
	CONSTRAINT pk_outbox_events PRIMARY KEY (id)
)
-- ;

CREATE INDEX ix_outbox_status_next ON outbox_events (status, next_attempt_at)
-- ;

CREATE TABLE inbox_records (
	id SERIAL NOT NULL,
	source VARCHAR(64) NOT NULL,
	delivery_id VARCHAR(200) NOT NULL,
	response JSONB NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_inbox_records PRIMARY KEY (id),
	CONSTRAINT uq_inbox_records_source UNIQUE (source, delivery_id)
)
-- ;

CREATE TABLE locations (
	id SERIAL NOT NULL,
	code VARCHAR(64) NOT NULL,
	name VARCHAR(200) NOT NULL,
	CONSTRAINT pk_locations PRIMARY KEY (id),
	CONSTRAINT uq_locations_code UNIQUE (code)
)
-- ;

CREATE TABLE carrier_generic_sequences (
	key VARCHAR(100) NOT NULL,
	value BIGINT NOT NULL,
	CONSTRAINT pk_carrier_generic_sequences PRIMARY KEY (key)
)
-- ;

CREATE TABLE accounting_export_entries (
	id SERIAL NOT NULL,
	uid VARCHAR(32) NOT NULL,
	source_key VARCHAR(200) NOT NULL,
	event_id INTEGER,
	kind VARCHAR(32) NOT NULL,
	order_id INTEGER,
	order_number VARCHAR(32),
	source_id INTEGER,
	booking_date DATE NOT NULL,
	channel VARCHAR(64),
	payee VARCHAR(200),
	description VARCHAR(500) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_accounting_export_entries PRIMARY KEY (id),
	CONSTRAINT uq_accounting_export_entries_source_key UNIQUE (source_key),
	CONSTRAINT uq_accounting_export_entries_uid UNIQUE (uid),
	CONSTRAINT uq_accounting_export_entries_event_kind_order UNIQUE (event_id, kind, order_id)
)
-- ;

CREATE INDEX ix_accounting_export_entries_date_id ON accounting_export_entries (booking_date, id)
-- ;

CREATE INDEX ix_accounting_export_entries_kind_source ON accounting_export_entries (kind, source_id)
-- ;

CREATE INDEX ix_accounting_export_entries_order ON accounting_export_entries (order_id, id)
-- ;

CREATE TABLE accounting_export_order_books (
	order_id INTEGER NOT NULL,
	currency VARCHAR(3) NOT NULL,
	total BIGINT NOT NULL,
	composition JSONB NOT NULL,
	credited BIGINT NOT NULL,
	cancelled BOOLEAN NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_accounting_export_order_books PRIMARY KEY (order_id)
)
-- ;

CREATE TABLE accounting_export_receipt_counters (
	year INTEGER NOT NULL,
	last INTEGER NOT NULL,
	CONSTRAINT pk_accounting_export_receipt_counters PRIMARY KEY (year)
)
-- ;

CREATE TABLE accounting_export_receipts (
	id SERIAL NOT NULL,
	order_id INTEGER NOT NULL,
	year INTEGER NOT NULL,
	seq INTEGER NOT NULL,
	number VARCHAR(32) NOT NULL,
	issued_at TIMESTAMP WITH TIME ZONE NOT NULL,
	currency VARCHAR(3) NOT NULL,
	total BIGINT NOT NULL,
	data JSONB NOT NULL,
	CONSTRAINT pk_accounting_export_receipts PRIMARY KEY (id),
	CONSTRAINT uq_accounting_export_receipts_order_id UNIQUE (order_id),
	CONSTRAINT uq_accounting_export_receipts_year UNIQUE (year, seq),
	CONSTRAINT uq_accounting_export_receipts_number UNIQUE (number)
)
-- ;

CREATE TABLE accounting_export_state (
	name VARCHAR(64) NOT NULL,
	value BIGINT NOT NULL,
	CONSTRAINT pk_accounting_export_state PRIMARY KEY (name)
)
-- ;

CREATE TABLE accounting_export_cost_gaps (
	id SERIAL NOT NULL,
	source_key VARCHAR(200) NOT NULL,
	kind VARCHAR(32) NOT NULL,
	order_id INTEGER,
	sku VARCHAR(64) NOT NULL,
	quantity INTEGER NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_accounting_export_cost_gaps PRIMARY KEY (id),
	CONSTRAINT uq_accounting_export_cost_gaps_source_key UNIQUE (source_key, sku)
)
-- ;

CREATE TABLE channel_webhook_channels (
	id SERIAL NOT NULL,
	name VARCHAR(48) NOT NULL,
	format VARCHAR(32) NOT NULL,
	secret VARCHAR(255) NOT NULL,
	previous_secret VARCHAR(255),
	previous_secret_expires_at TIMESTAMP WITH TIME ZONE,
	sku_map JSONB NOT NULL,
	payment_provider VARCHAR(64) NOT NULL,
	payment_status VARCHAR(16) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_channel_webhook_channels PRIMARY KEY (id),
	CONSTRAINT uq_channel_webhook_channels_name UNIQUE (name)
)
-- ;

CREATE TABLE channel_webhook_subscriptions (
	id SERIAL NOT NULL,
	url VARCHAR(2000) NOT NULL,
	events JSONB NOT NULL,
	description VARCHAR(200),
	secret VARCHAR(255) NOT NULL,
	previous_secret VARCHAR(255),
	previous_secret_expires_at TIMESTAMP WITH TIME ZONE,
	status VARCHAR(16) NOT NULL,
	disabled_reason TEXT,
	disabled_at TIMESTAMP WITH TIME ZONE,
	consecutive_failures INTEGER NOT NULL,
	failing_since TIMESTAMP WITH TIME ZONE,
	last_success_at TIMESTAMP WITH TIME ZONE,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_channel_webhook_subscriptions PRIMARY KEY (id)
)
-- ;

CREATE TABLE idempotency_records (
	id SERIAL NOT NULL,
	api_key_id INTEGER NOT NULL,
	key VARCHAR(255) NOT NULL,
	request_hash VARCHAR(64) NOT NULL,
	status_code INTEGER NOT NULL,
	response_body TEXT NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_idempotency_records PRIMARY KEY (id),
	CONSTRAINT uq_idempotency_records_api_key_id UNIQUE (api_key_id, key),
	CONSTRAINT fk_idempotency_records_api_key_id_api_keys FOREIGN KEY(api_key_id) REFERENCES api_keys (id)
)
-- ;

CREATE INDEX ix_idempotency_records_created_at ON idempotency_records (created_at)
-- ;

CREATE TABLE orders (
	id SERIAL NOT NULL,
	status VARCHAR(16) NOT NULL,
	held_from VARCHAR(16),
	hold_reason VARCHAR(200),
	payment_status VARCHAR(24) NOT NULL,
	payment_provider VARCHAR(64) NOT NULL,
	channel VARCHAR(64) NOT NULL,
	external_id VARCHAR(128),
	customer_id INTEGER NOT NULL,
	email VARCHAR(254) NOT NULL,
	customer_name VARCHAR(200) NOT NULL,
	phone VARCHAR(40),
	shipping_address JSONB NOT NULL,
	currency VARCHAR(3) NOT NULL,
	subtotal INTEGER NOT NULL,
	discount_total INTEGER NOT NULL,
	shipping_total INTEGER NOT NULL,
	tax_total INTEGER NOT NULL,
	total INTEGER NOT NULL,
	paid_total INTEGER NOT NULL,
	refunded_total INTEGER NOT NULL,
	coupon VARCHAR(64),
	gift BOOLEAN NOT NULL,
	flags JSONB NOT NULL,
	replacement_for_id INTEGER,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_orders PRIMARY KEY (id),
	CONSTRAINT uq_orders_channel UNIQUE (channel, external_id),
	CONSTRAINT fk_orders_customer_id_customers FOREIGN KEY(customer_id) REFERENCES customers (id),
	CONSTRAINT fk_orders_replacement_for_id_orders FOREIGN KEY(replacement_for_id) REFERENCES orders (id)
)
-- ;

CREATE INDEX ix_orders_status_id ON orders (status, id)
-- ;

CREATE INDEX ix_orders_customer_id ON orders (customer_id, id)
-- ;

CREATE TABLE stock_levels (
	id SERIAL NOT NULL,
	product_id INTEGER NOT NULL,
	location_id INTEGER NOT NULL,
	on_hand INTEGER NOT NULL,
	reserved INTEGER NOT NULL,
	CONSTRAINT pk_stock_levels PRIMARY KEY (id),
	CONSTRAINT uq_stock_levels_product_id UNIQUE (product_id, location_id),
	CONSTRAINT ck_stock_levels_on_hand_not_negative CHECK (on_hand >= 0),
	CONSTRAINT ck_stock_levels_reserved_not_negative CHECK (reserved >= 0),
	CONSTRAINT ck_stock_levels_available_not_negative CHECK (reserved <= on_hand),
	CONSTRAINT fk_stock_levels_product_id_products FOREIGN KEY(product_id) REFERENCES products (id),
	CONSTRAINT fk_stock_levels_location_id_locations FOREIGN KEY(location_id) REFERENCES locations (id)
)
-- ;

CREATE TABLE purchase_orders (
	id SERIAL NOT NULL,
	product_id INTEGER NOT NULL,
	quantity INTEGER NOT NULL,
	status VARCHAR(16) NOT NULL,
	reason VARCHAR(200) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_purchase_orders PRIMARY KEY (id),
	CONSTRAINT fk_purchase_orders_product_id_products FOREIGN KEY(product_id) REFERENCES products (id)
)
-- ;

CREATE TABLE accounting_export_postings (
	id SERIAL NOT NULL,
	entry_id INTEGER NOT NULL,
	line_no INTEGER NOT NULL,
	account VARCHAR(200) NOT NULL,
	role VARCHAR(32) NOT NULL,
	amount BIGINT NOT NULL,
	currency VARCHAR(3) NOT NULL,
	tax_rate VARCHAR(16),
	sku VARCHAR(64),
	quantity INTEGER,
	memo VARCHAR(200),
	CONSTRAINT pk_accounting_export_postings PRIMARY KEY (id),
	CONSTRAINT uq_accounting_export_postings_entry_id UNIQUE (entry_id, line_no),
	CONSTRAINT ck_accounting_export_postings_amount_not_zero CHECK (amount <> 0),
	CONSTRAINT fk_accounting_export_postings_entry_id_accounting_expor_58ff FOREIGN KEY(entry_id) REFERENCES accounting_export_entries (id) DEFERRABLE INITIALLY DEFERRED
)
-- ;

CREATE INDEX ix_accounting_export_postings_account ON accounting_export_postings (account, currency)
-- ;

CREATE OR REPLACE FUNCTION accounting_export_entries_check() RETURNS trigger AS $$
DECLARE
  eid integer;
  n integer;
  bad record;
BEGIN
  IF TG_TABLE_NAME = 'accounting_export_entries' THEN eid := NEW.id; ELSE eid := NEW.entry_id; END IF;
  IF NOT EXISTS (SELECT 1 FROM accounting_export_entries WHERE id = eid) THEN
    RAISE EXCEPTION 'journal entry % has postings but was never posted', eid USING ERRCODE = '23514';
  END IF;
  SELECT count(*) INTO n FROM accounting_export_postings WHERE entry_id = eid;
  IF n < 2 THEN
    RAISE EXCEPTION 'journal entry % refused: it has % postings, it needs at least two', eid, n
      USING ERRCODE = '23514';
  END IF;
  SELECT currency, sum(amount) AS total INTO bad FROM accounting_export_postings WHERE entry_id = eid
    GROUP BY currency HAVING sum(amount) <> 0 LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'journal entry % refused: its postings do not balance in % (off by % minor units)',
      eid, bad.currency, bad.total USING ERRCODE = '23514';
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql
-- ;

CREATE OR REPLACE FUNCTION accounting_export_postings_closed() RETURNS trigger AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM accounting_export_entries WHERE id = NEW.entry_id) THEN
    RAISE EXCEPTION 'posting refused: journal entry % is already posted (posted journal entries are immutable: post a reversing entry instead)', NEW.entry_id
      USING ERRCODE = '23514';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql
-- ;

CREATE OR REPLACE FUNCTION accounting_export_entries_immutable() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'posted journal entries are immutable: post a reversing entry instead' USING ERRCODE = '23514';
END $$ LANGUAGE plpgsql
-- ;

CREATE CONSTRAINT TRIGGER accounting_export_entries_balanced AFTER INSERT ON accounting_export_entries
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION accounting_export_entries_check()
-- ;

CREATE CONSTRAINT TRIGGER accounting_export_postings_balanced AFTER INSERT ON accounting_export_postings
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION accounting_export_entries_check()
-- ;

CREATE TRIGGER accounting_export_postings_closed BEFORE INSERT ON accounting_export_postings
  FOR EACH ROW EXECUTE FUNCTION accounting_export_postings_closed()
-- ;

CREATE TRIGGER accounting_export_entries_immutable BEFORE UPDATE OR DELETE ON accounting_export_entries
  FOR EACH ROW EXECUTE FUNCTION accounting_export_entries_immutable()
-- ;

CREATE TRIGGER accounting_export_postings_immutable BEFORE UPDATE OR DELETE ON accounting_export_postings
  FOR EACH ROW EXECUTE FUNCTION accounting_export_entries_immutable()
-- ;

CREATE TABLE accounting_export_sync (
	entry_id INTEGER NOT NULL,
	status VARCHAR(16) NOT NULL,
	attempts INTEGER NOT NULL,
	next_attempt_at TIMESTAMP WITH TIME ZONE NOT NULL,
	last_error TEXT,
	synced_at TIMESTAMP WITH TIME ZONE,
	CONSTRAINT pk_accounting_export_sync PRIMARY KEY (entry_id),
	CONSTRAINT fk_accounting_export_sync_entry_id_accounting_export_entries FOREIGN KEY(entry_id) REFERENCES accounting_export_entries (id) DEFERRABLE INITIALLY DEFERRED
)
-- ;

CREATE INDEX ix_accounting_export_sync_due ON accounting_export_sync (status, next_attempt_at)
-- ;

CREATE TABLE channel_webhook_deliveries (
	id SERIAL NOT NULL,
	subscription_id INTEGER NOT NULL,
	event_id INTEGER NOT NULL,
	event_type VARCHAR(64) NOT NULL,
	webhook_id VARCHAR(100) NOT NULL,
	body TEXT NOT NULL,
	status VARCHAR(16) NOT NULL,
	attempts INTEGER NOT NULL,
	next_attempt_at TIMESTAMP WITH TIME ZONE NOT NULL,
	last_status_code INTEGER,
	last_error TEXT,
	last_duration_ms INTEGER,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	delivered_at TIMESTAMP WITH TIME ZONE,
	CONSTRAINT pk_channel_webhook_deliveries PRIMARY KEY (id),
	CONSTRAINT uq_channel_webhook_deliveries_subscription_id UNIQUE (subscription_id, event_id),
	CONSTRAINT fk_channel_webhook_deliveries_subscription_id_channel_w_b3ef FOREIGN KEY(subscription_id) REFERENCES channel_webhook_subscriptions (id) ON DELETE CASCADE
)
-- ;

CREATE INDEX ix_channel_webhook_deliveries_subscription_id ON channel_webhook_deliveries (subscription_id)
-- ;

CREATE INDEX ix_channel_webhook_deliveries_status_next ON channel_webhook_deliveries (status, next_attempt_at)
-- ;

CREATE TABLE order_lines (
	id SERIAL NOT NULL,
	order_id INTEGER NOT NULL,
	product_id INTEGER NOT NULL,
	sku VARCHAR(64) NOT NULL,
	name VARCHAR(200) NOT NULL,
	quantity INTEGER NOT NULL,
	unit_price INTEGER NOT NULL,
	backordered INTEGER NOT NULL,
	picked_quantity INTEGER NOT NULL,
	returned_quantity INTEGER NOT NULL,
	serials JSONB NOT NULL,
	CONSTRAINT pk_order_lines PRIMARY KEY (id),
	CONSTRAINT ck_order_lines_quantity_positive CHECK (quantity > 0),
	CONSTRAINT fk_order_lines_order_id_orders FOREIGN KEY(order_id) REFERENCES orders (id),
	CONSTRAINT fk_order_lines_product_id_products FOREIGN KEY(product_id) REFERENCES products (id)
)
-- ;

CREATE INDEX ix_order_lines_order_id ON order_lines (order_id)
-- ;

CREATE TABLE order_events (
	id SERIAL NOT NULL,
	order_id INTEGER NOT NULL,
	kind VARCHAR(64) NOT NULL,
	message TEXT NOT NULL,
	data JSONB NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_order_events PRIMARY KEY (id),
	CONSTRAINT fk_order_events_order_id_orders FOREIGN KEY(order_id) REFERENCES orders (id)
)
-- ;

CREATE INDEX ix_order_events_order_id ON order_events (order_id)
-- ;

CREATE TABLE payments (
	id SERIAL NOT NULL,
	order_id INTEGER NOT NULL,
	provider VARCHAR(64) NOT NULL,
	amount INTEGER NOT NULL,
	currency VARCHAR(3) NOT NULL,
	status VARCHAR(24) NOT NULL,
	reference VARCHAR(200),
	refunded_amount INTEGER NOT NULL,
	fee INTEGER,
	data JSONB NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_payments PRIMARY KEY (id),
	CONSTRAINT fk_payments_order_id_orders FOREIGN KEY(order_id) REFERENCES orders (id)
)
-- ;

CREATE INDEX ix_payments_reference ON payments (reference)
-- ;

CREATE INDEX ix_payments_order_id ON payments (order_id)
-- ;

CREATE TABLE shipments (
	id SERIAL NOT NULL,
	order_id INTEGER NOT NULL,
	carrier VARCHAR(64) NOT NULL,
	service VARCHAR(64) NOT NULL,
	tracking_number VARCHAR(64),
	tracking_url VARCHAR(500),
	estimated_delivery DATE,
	price INTEGER NOT NULL,
	status VARCHAR(32) NOT NULL,
	label_pdf BYTEA,
	data JSONB NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_shipments PRIMARY KEY (id),
	CONSTRAINT fk_shipments_order_id_orders FOREIGN KEY(order_id) REFERENCES orders (id)
)
-- ;

CREATE INDEX ix_shipments_tracking_number ON shipments (tracking_number)
-- ;

CREATE INDEX ix_shipments_order_id ON shipments (order_id)
-- ;

CREATE TABLE returns (
	id SERIAL NOT NULL,
	order_id INTEGER NOT NULL,
	status VARCHAR(16) NOT NULL,
	reason TEXT NOT NULL,
	resolution VARCHAR(16) NOT NULL,
	lines JSONB NOT NULL,
	refund_amount INTEGER NOT NULL,
	replacement_order_id INTEGER,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_returns PRIMARY KEY (id),
	CONSTRAINT fk_returns_order_id_orders FOREIGN KEY(order_id) REFERENCES orders (id),
	CONSTRAINT fk_returns_replacement_order_id_orders FOREIGN KEY(replacement_order_id) REFERENCES orders (id)
)
-- ;

CREATE INDEX ix_returns_order_id ON returns (order_id)
-- ;

CREATE TABLE stock_movements (
	id SERIAL NOT NULL,
	product_id INTEGER NOT NULL,
	location_id INTEGER NOT NULL,
	quantity INTEGER NOT NULL,
	kind VARCHAR(32) NOT NULL,
	order_id INTEGER,
	reference VARCHAR(200),
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_stock_movements PRIMARY KEY (id),
	CONSTRAINT fk_stock_movements_product_id_products FOREIGN KEY(product_id) REFERENCES products (id),
	CONSTRAINT fk_stock_movements_location_id_locations FOREIGN KEY(location_id) REFERENCES locations (id),
	CONSTRAINT fk_stock_movements_order_id_orders FOREIGN KEY(order_id) REFERENCES orders (id)
)
-- ;

CREATE INDEX ix_stock_movements_product_location ON stock_movements (product_id, location_id)
-- ;

CREATE TABLE payments_stripe_operations (
	id SERIAL NOT NULL,
	order_id INTEGER NOT NULL,
	operation VARCHAR(200) NOT NULL,
	attempt INTEGER NOT NULL,
	idempotency_key VARCHAR(255) NOT NULL,
	status VARCHAR(16) NOT NULL,
	payment_intent_id VARCHAR(255),
	amount INTEGER,
	stripe_status VARCHAR(32),
	result_id VARCHAR(255),
	error TEXT,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_payments_stripe_operations PRIMARY KEY (id),
	CONSTRAINT uq_payments_stripe_operations_order_id UNIQUE (order_id, operation, attempt),
	CONSTRAINT fk_payments_stripe_operations_order_id_orders FOREIGN KEY(order_id) REFERENCES orders (id),
	CONSTRAINT uq_payments_stripe_operations_idempotency_key UNIQUE (idempotency_key)
)
-- ;

CREATE INDEX ix_payments_stripe_operations_payment_intent_id ON payments_stripe_operations (payment_intent_id)
-- ;

CREATE INDEX ix_payments_stripe_operations_order_id ON payments_stripe_operations (order_id)
-- ;

CREATE TABLE channel_webhook_inbound (
	id SERIAL NOT NULL,
	channel VARCHAR(48) NOT NULL,
	delivery_id VARCHAR(200) NOT NULL,
	topic VARCHAR(100),
	external_id VARCHAR(128),
	order_id INTEGER,
	outcome VARCHAR(16) NOT NULL,
	status_code INTEGER NOT NULL,
	reason TEXT,
	errors JSONB NOT NULL,
	extra JSONB NOT NULL,
	payload JSONB,
	attempts INTEGER NOT NULL,
	first_seen_at TIMESTAMP WITH TIME ZONE NOT NULL,
	last_seen_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_channel_webhook_inbound PRIMARY KEY (id),
	CONSTRAINT uq_channel_webhook_inbound_channel UNIQUE (channel, delivery_id),
	CONSTRAINT fk_channel_webhook_inbound_order_id_orders FOREIGN KEY(order_id) REFERENCES orders (id)
)
-- ;

CREATE INDEX ix_channel_webhook_inbound_channel_outcome ON channel_webhook_inbound (channel, outcome, id)
-- ;

CREATE INDEX ix_channel_webhook_inbound_external_id ON channel_webhook_inbound (external_id)
-- ;

CREATE TABLE channel_webhook_attempts (
	id SERIAL NOT NULL,
	delivery_id INTEGER NOT NULL,
	number INTEGER NOT NULL,
	manual BOOLEAN NOT NULL,
	at TIMESTAMP WITH TIME ZONE NOT NULL,
	status_code INTEGER,
	duration_ms INTEGER NOT NULL,
	error TEXT,
	response TEXT,
	CONSTRAINT pk_channel_webhook_attempts PRIMARY KEY (id),
	CONSTRAINT fk_channel_webhook_attempts_delivery_id_channel_webhook_58b0 FOREIGN KEY(delivery_id) REFERENCES channel_webhook_deliveries (id) ON DELETE CASCADE
)
-- ;

CREATE INDEX ix_channel_webhook_attempts_delivery_id ON channel_webhook_attempts (delivery_id)
-- ;

CREATE TABLE serial_units (
	id SERIAL NOT NULL,
	product_id INTEGER NOT NULL,
	location_id INTEGER NOT NULL,
	serial VARCHAR(128) NOT NULL,
	status VARCHAR(16) NOT NULL,
	line_id INTEGER,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_serial_units PRIMARY KEY (id),
	CONSTRAINT uq_serial_units_product_id UNIQUE (product_id, serial),
	CONSTRAINT fk_serial_units_product_id_products FOREIGN KEY(product_id) REFERENCES products (id),
	CONSTRAINT fk_serial_units_location_id_locations FOREIGN KEY(location_id) REFERENCES locations (id),
	CONSTRAINT fk_serial_units_line_id_order_lines FOREIGN KEY(line_id) REFERENCES order_lines (id)
)
-- ;

CREATE INDEX ix_serial_units_line_id ON serial_units (line_id)
-- ;

CREATE INDEX ix_serial_units_serial ON serial_units (serial)
-- ;

CREATE TABLE reservations (
	id SERIAL NOT NULL,
	order_id INTEGER NOT NULL,
	line_id INTEGER NOT NULL,
	product_id INTEGER NOT NULL,
	location_id INTEGER NOT NULL,
	quantity INTEGER NOT NULL,
	status VARCHAR(16) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_reservations PRIMARY KEY (id),
	CONSTRAINT ck_reservations_quantity_positive CHECK (quantity > 0),
	CONSTRAINT fk_reservations_order_id_orders FOREIGN KEY(order_id) REFERENCES orders (id),
	CONSTRAINT fk_reservations_line_id_order_lines FOREIGN KEY(line_id) REFERENCES order_lines (id),
	CONSTRAINT fk_reservations_product_id_products FOREIGN KEY(product_id) REFERENCES products (id),
	CONSTRAINT fk_reservations_location_id_locations FOREIGN KEY(location_id) REFERENCES locations (id)
)
-- ;

CREATE INDEX ix_reservations_order_status ON reservations (order_id, status)
-- ;

CREATE TABLE carrier_generic_tracking_events (
	id SERIAL NOT NULL,
	shipment_id INTEGER NOT NULL,
	order_id INTEGER NOT NULL,
	carrier VARCHAR(64) NOT NULL,
	tracking_number VARCHAR(64) NOT NULL,
	status VARCHAR(32) NOT NULL,
	occurred_at TIMESTAMP WITH TIME ZONE NOT NULL,
	location VARCHAR(200),
	webhook_id VARCHAR(200) NOT NULL,
	late BOOLEAN NOT NULL,
	moved_order BOOLEAN NOT NULL,
	received_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_carrier_generic_tracking_events PRIMARY KEY (id),
	CONSTRAINT uq_carrier_generic_tracking_events_shipment_id UNIQUE (shipment_id, status, occurred_at),
	CONSTRAINT fk_carrier_generic_tracking_events_shipment_id_shipments FOREIGN KEY(shipment_id) REFERENCES shipments (id),
	CONSTRAINT fk_carrier_generic_tracking_events_order_id_orders FOREIGN KEY(order_id) REFERENCES orders (id)
)
-- ;

CREATE INDEX ix_carrier_generic_tracking_events_shipment_id ON carrier_generic_tracking_events (shipment_id)
-- ;

CREATE INDEX ix_carrier_generic_tracking_events_order_id ON carrier_generic_tracking_events (order_id)
-- ;
