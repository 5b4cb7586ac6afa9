//! Table-table joins: customers with their loyalty status, and orders with their customer.
//! Tables `customers` and `loyalty` (keyed by customer id) and `orders` (keyed by order id)
//! hold the latest value of each key from topics `customer-orders-customers`, `-loyalty` and
//! `-orders` (a tombstone deletes). Table `customer_status` is their left join on the
//! customer id (co-partitioned: both are keyed by it); table `order_customers` joins each
//! order with its customer through the order's `customer` field (a foreign-key join, through
//! two internal topics, as in Kafka Streams). Both results are tables: changelogged, recovered
//! after a restart, updated when either side changes and removed when the join no longer
//! holds. The demo prints them after each round of changes.
//!
//! ```text
//! cargo run --example customer_orders           # the demo, on an embedded mock broker
//! CUSTOMER_ORDERS_STORE=redb://data \
//!     cargo run --example customer_orders -- --broker kafka://localhost:9092 worker
//! CUSTOMER_ORDERS_STORE=redb://data cargo run --example customer_orders -- \
//!     --broker kafka://localhost:9092 tables --table order_customers --partition 0 --json
//! ```
//!
//! `CUSTOMER_ORDERS_APP` changes the app id (and so the topics' names),
//! `CUSTOMER_ORDERS_STORE` the store, `CUSTOMER_ORDERS_GUARANTEE=exactly_once` the
//! processing guarantee (the crash test uses them).
//!
//! Kafka Streams:
//! ```java
//! KTable<String, Customer> customers = builder.table("customers");
//! KTable<String, Loyalty> loyalty = builder.table("loyalty");
//! KTable<String, Order> orders = builder.table("orders");
//! customers.leftJoin(loyalty, (c, l) -> new CustomerStatus(c, l));
//! orders.join(customers, Order::customer, (o, c) -> new OrderWithCustomer(o, c));
//! ```

use std::process::ExitCode;
use std::time::Duration;

use examples::customer_orders_demo::{
    self, customer, loyalty, order, Config, CustomerOrdersDemo, CustomerStatus, OrderWithCustomer,
};
use streams::Table;

fn main() -> ExitCode {
    match build() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints both result tables, sorted by key.
fn print_results(
    round: &str,
    status: &Table<String, CustomerStatus>,
    orders: &Table<String, OrderWithCustomer>,
) -> streams::Result<()> {
    println!("-- {round}");
    let mut statuses = status.items()?;
    statuses.sort_by(|a, b| a.0.cmp(&b.0));
    for (id, s) in statuses {
        let tier = s.tier.as_deref().unwrap_or("no tier");
        println!("status {id}: {} ({tier})", s.name);
    }
    let mut joined = orders.items()?;
    joined.sort_by(|a, b| a.0.cmp(&b.0));
    for (id, o) in joined {
        println!(
            "order {id}: {} x{} for {} in {}",
            o.item, o.amount, o.customer, o.city
        );
    }
    Ok(())
}

fn build() -> streams::Result<ExitCode> {
    let env = |name: &str, default: String| std::env::var(name).unwrap_or(default);
    let d = Config::default();
    let config = Config {
        app: env("CUSTOMER_ORDERS_APP", d.app),
        store: env("CUSTOMER_ORDERS_STORE", d.store),
        guarantee: env("CUSTOMER_ORDERS_GUARANTEE", d.guarantee),
    };
    let CustomerOrdersDemo {
        app,
        customers,
        loyalty: tiers,
        orders,
        customer_status,
        order_customers,
    } = customer_orders_demo::build(&config)?;
    let caught_up = Duration::from_secs(30);
    Ok(app.main_with_demo(move |app| async move {
        let c = |id: &str| id.to_owned();
        customers.send(c("c1"), customer("ann", "Paris")).await?;
        customers.send(c("c2"), customer("bob", "Berlin")).await?;
        customers.send(c("c3"), customer("cy", "Lima")).await?;
        tiers.send(c("c1"), loyalty("gold")).await?;
        tiers.send(c("c2"), loyalty("silver")).await?;
        orders.send(c("o1"), order("c1", "book", 1)).await?;
        orders.send(c("o2"), order("c2", "pen", 3)).await?;
        orders.send(c("o3"), order("c4", "cup", 2)).await?; // no customer c4 yet
        app.wait_caught_up(caught_up).await?;
        print_results("first round", &customer_status, &order_customers)?;
        // Changes on both sides of both joins: an update, deletes, an order moving to
        // another customer and a customer arriving for a waiting order.
        tiers.send(c("c1"), loyalty("platinum")).await?;
        tiers.send(c("c2"), None).await?;
        customers.send(c("c3"), None).await?;
        customers.send(c("c4"), customer("dan", "Oslo")).await?;
        orders.send(c("o2"), order("c1", "pen", 3)).await?;
        orders.send(c("o1"), None).await?;
        app.wait_caught_up(caught_up).await?;
        print_results("after the changes", &customer_status, &order_customers)?;
        println!("done");
        Ok::<(), streams::Error>(())
    }))
}
