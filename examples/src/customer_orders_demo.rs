//! The customer_orders example's app: table-table joins (Kafka Streams' KTable-KTable join and
//! its foreign-key join). Three tables follow their topics (`builder.table(topic)`; a
//! tombstone deletes): `customers` and `loyalty` keyed by customer id, `orders` keyed by order
//! id. Two join results are tables of their own, changelogged and recovered like any table:
//! `customer_status`, each customer with its loyalty tier (a left join on the customer id),
//! and `order_customers`, each order with its customer (an inner join through the order's
//! `customer` field, a foreign key). The example runs it; its tests run the example as worker
//! processes.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use streams::{App, Table, Topic};

/// A customer, keyed by customer id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub name: String,
    pub city: String,
}

/// A customer's loyalty status, keyed by customer id (co-partitioned with the customers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Loyalty {
    pub tier: String,
}

/// An order, keyed by order id; `customer` is the customer id it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub customer: String,
    pub item: String,
    pub amount: i64,
}

/// A customer with its loyalty tier (`None`: no loyalty status): `customer_status`'s values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerStatus {
    pub name: String,
    pub tier: Option<String>,
}

/// An order with its customer: `order_customers`' values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderWithCustomer {
    pub item: String,
    pub amount: i64,
    pub customer: String,
    pub city: String,
}

/// The join of a customer with its loyalty status (`customer_status`'s function).
pub fn status(customer: &Customer, loyalty: Option<&Loyalty>) -> CustomerStatus {
    CustomerStatus {
        name: customer.name.clone(),
        tier: loyalty.map(|l| l.tier.clone()),
    }
}

/// The join of an order with its customer (`order_customers`' function).
pub fn order_with_customer(order: &Order, customer: &Customer) -> OrderWithCustomer {
    OrderWithCustomer {
        item: order.item.clone(),
        amount: order.amount,
        customer: customer.name.clone(),
        city: customer.city.clone(),
    }
}

/// The app and the handles its users need.
pub struct CustomerOrdersDemo {
    pub app: App,
    pub customers: Topic<String, Option<Customer>>,
    pub loyalty: Topic<String, Option<Loyalty>>,
    pub orders: Topic<String, Option<Order>>,
    pub customer_status: Table<String, CustomerStatus>,
    pub order_customers: Table<String, OrderWithCustomer>,
}

/// Where and how the app runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The app id; the topics are `<app>-customers`, `<app>-loyalty`, `<app>-orders`.
    pub app: String,
    pub store: String,
    pub guarantee: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            app: "customer-orders".into(),
            store: "memory://".into(),
            guarantee: "at_least_once".into(),
        }
    }
}

/// Builds the app: the three input tables from their topics and the two join results.
pub fn build(config: &Config) -> streams::Result<CustomerOrdersDemo> {
    let app = App::builder(&config.app)
        .broker("mock://")
        .store(&config.store)
        .processing_guarantee(&config.guarantee)
        .topic_partitions(3)
        // A foreign-key result comes back through two internal topics, whose records go out
        // with commits: commit often so that it is there within a second.
        .broker_commit_interval(Duration::from_millis(200))
        .broker_session_timeout(Duration::from_secs(10))
        .broker_heartbeat_interval(Duration::from_secs(1))
        .build()?;
    let topic = |name: &str| format!("{}-{name}", config.app);
    // Read as Option<V>: a tombstone (no value) is a delete.
    let customers = app.topic::<String, Option<Customer>>(&topic("customers"));
    let loyalty = app.topic::<String, Option<Loyalty>>(&topic("loyalty"));
    let orders = app.topic::<String, Option<Order>>(&topic("orders"));
    // Kafka Streams: builder.table("customers"), ...
    let customer_table = app
        .table_builder::<String, Customer>("customers")
        .from_topic(&app.topic(customers.name()))?;
    let loyalty_table = app
        .table_builder::<String, Loyalty>("loyalty")
        .from_topic(&app.topic(loyalty.name()))?;
    let order_table = app
        .table_builder::<String, Order>("orders")
        .from_topic(&app.topic(orders.name()))?;
    // Kafka Streams: customers.leftJoin(loyalty, (c, l) -> ...)
    let customer_status = customer_table
        .left_join(&loyalty_table, status)
        .named("customer_status")
        .build()?;
    // Kafka Streams: orders.join(customers, Order::customer, (o, c) -> ...)
    let order_customers = order_table
        .join_on(
            &customer_table,
            |o: &Order| o.customer.clone(),
            order_with_customer,
        )
        .named("order_customers")
        .build()?;
    Ok(CustomerOrdersDemo {
        app,
        customers,
        loyalty,
        orders,
        customer_status,
        order_customers,
    })
}

/// A customer of the demo.
pub fn customer(name: &str, city: &str) -> Option<Customer> {
    Some(Customer {
        name: name.into(),
        city: city.into(),
    })
}

/// A loyalty status of the demo.
pub fn loyalty(tier: &str) -> Option<Loyalty> {
    Some(Loyalty { tier: tier.into() })
}

/// An order of the demo.
pub fn order(customer: &str, item: &str, amount: i64) -> Option<Order> {
    Some(Order {
        customer: customer.into(),
        item: item.into(),
        amount,
    })
}
