//! Checks of the test helpers' own console parser, on text in Locust's console format.

mod common;

use common::*;

const SAMPLE: &str = "\
[2026-11-21 07:01:45,306] vm/INFO/hopper.runners: All users spawned: {\"Shopper\": 3, \"Visitor\": 7} (10 total users)
Type     Name                                                                          # reqs      # fails |    Avg     Min     Max    Med |   req/s  failures/s
--------|----------------------------------------------------------------------------|-------|-------------|-------|-------|-------|-------|--------|-----------
--------|----------------------------------------------------------------------------|-------|-------------|-------|-------|-------|-------|--------|-----------
         Aggregated                                                                         0     0(0.00%) |      0       0       0      0 |    0.00        0.00

[2026-11-21 07:01:48,308] vm/INFO/hopper.main: Shutting down (exit code 1)
Type     Name                                                                          # reqs      # fails |    Avg     Min     Max    Med |   req/s  failures/s
--------|----------------------------------------------------------------------------|-------|-------------|-------|-------|-------|-------|--------|-----------
GET      /                                                                                  8     0(0.00%) |      0       0       1      0 |    2.93        0.00
GET      /products/[id]                                                                     7    2(28.57%) |      0       0       0      0 |    2.56        0.73
--------|----------------------------------------------------------------------------|-------|-------------|-------|-------|-------|-------|--------|-----------
         Aggregated                                                                        15     2(13.33%) |      2       0      83      0 |   12.82        0.73

Response time percentiles (approximated)
Type     Name                                                                                  50%    66%    75%    80%    90%    95%    98%    99%  99.9% 99.99%   100% # reqs
";

#[test]
fn parses_final_summary_and_periodic_tables() {
    let s = parse_summary(SAMPLE).expect("summary");
    assert_eq!(s.logged_exit_code, 1);
    assert_eq!(s.rows.len(), 2);
    assert_eq!(s.row("GET", "/").unwrap().reqs, 8);
    assert_eq!(s.row("GET", "/products/[id]").unwrap().reqs, 7);
    assert_eq!(s.row("GET", "/products/[id]").unwrap().fails, 2);
    assert_eq!(s.aggregated.reqs, 15);
    assert_eq!(s.aggregated.fails, 2);
    assert_eq!(final_tables(SAMPLE), 1);
    let periodic = periodic_tables(SAMPLE);
    assert_eq!(periodic.len(), 1);
    assert!(periodic[0].0.is_empty());
    assert_eq!(periodic[0].1.reqs, 0);
}

#[test]
fn parses_users_spawned() {
    assert_eq!(
        users_spawned(SAMPLE),
        Some(("{\"Shopper\": 3, \"Visitor\": 7}".to_string(), 10))
    );
}

#[test]
fn no_summary_without_shutdown_line() {
    assert!(parse_summary("Type     Name  # reqs  # fails\n").is_none());
}
