use gatehouse_tests::MariaDb;

#[test]
fn mariadb_starts_and_answers() {
    let db = MariaDb::start().unwrap();
    let out = db.root_sql("SELECT 40 + 2").unwrap();
    assert!(out.contains("42"), "{out}");
}
