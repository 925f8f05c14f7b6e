//! The `-s` blocks of our own (1.4.7's are fixed texts, printed byte for
//! byte elsewhere): their lines come from the fields described as shown
//! in them, laid out as 1.4.7 lays out `-s runtime`.

use super::describe::Field;

/// One line: a tab, the label and a colon, tabs up to column 40, the
/// value in 12 columns.
fn line(out: &mut String, label: &str, value: u64) {
    out.push('\t');
    out.push_str(label);
    out.push(':');
    let mut column = 8 + label.len() + 1;
    loop {
        out.push('\t');
        column = (column / 8 + 1) * 8;
        if column >= 40 {
            break;
        }
    }
    out.push_str(&format!("{value:>12}\n"));
}

/// The lines of the fields shown in `block` (their `shown` is `block`
/// followed by the label), with their values from `number` (a struct's
/// generated `number`). Returns whether any value is not 0.
pub fn lines(
    out: &mut String,
    fields: &[Field],
    block: &str,
    number: impl Fn(&str) -> Option<f64>,
) -> bool {
    let mut any = false;
    for field in fields {
        if let Some(label) = field.shown.strip_prefix(block) {
            let value = number(field.json).unwrap_or(0.0) as u64;
            any |= value > 0;
            line(out, label, value);
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_start_at_column_40_as_in_1_4_7() {
        let mut out = String::new();
        line(&mut out, "accept errors", 3);
        line(&mut out, "clients refused (busy)", 0);
        assert_eq!(
            out,
            "\taccept errors:\t\t\t           3\n\tclients refused (busy):\t\t           0\n"
        );
    }
}
