fn main() {
    println!("harust");
}
