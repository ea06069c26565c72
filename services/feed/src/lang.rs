//! Two languages: Vietnamese (the default, at `/`) and English (at `/en`).
//!
//! Every page is written once, with each piece of text given in both
//! languages at the place it is used, so a page cannot gain a string in one
//! language and silently miss it in the other.

use aidledger_ledger::{Category, OrgKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lang {
    Vi,
    En,
}

impl Lang {
    /// `vi` or `en` text, whichever this language is.
    pub fn t<'a>(self, vi: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Vi => vi,
            Lang::En => en,
        }
    }

    /// The BCP 47 tag, for `<html lang>`.
    pub fn tag(self) -> &'static str {
        self.t("vi", "en")
    }

    /// The path of a page in this language: `/communes` or `/en/communes`.
    pub fn href(self, path: &str) -> String {
        match (self, path) {
            (Lang::Vi, _) => path.to_owned(),
            (Lang::En, "/") => "/en".to_owned(),
            (Lang::En, _) => format!("/en{path}"),
        }
    }

    /// The other language, for the switch in the header.
    pub fn other(self) -> Lang {
        match self {
            Lang::Vi => Lang::En,
            Lang::En => Lang::Vi,
        }
    }

    /// An integer with the language's thousands separator.
    pub fn int(self, n: u64) -> String {
        let separator = self.t(".", ",");
        let digits = n.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push_str(separator);
            }
            out.push(digit);
        }
        out
    }

    /// An amount of đồng.
    pub fn vnd(self, n: u64) -> String {
        format!("{} ₫", self.int(n))
    }

    /// A share in basis points, as a percentage with one decimal.
    pub fn percent(self, basis_points: u32) -> String {
        let whole = basis_points / 100;
        let tenth = (basis_points % 100) / 10;
        format!("{whole}{}{tenth} %", self.t(",", "."))
    }

    pub fn category(self, category: Category) -> &'static str {
        match category {
            Category::Health => self.t("Khám, chữa bệnh", "Health care"),
            Category::Nutrition => self.t("Bữa ăn học đường", "School meals"),
            Category::CultureRecreation => self.t("Văn hoá, vui chơi", "Culture and play"),
            Category::Scholarship => self.t("Học bổng", "Scholarships"),
            Category::BooksSupplies => self.t("Sách vở, đồ dùng học tập", "Books and supplies"),
            Category::Clothing => self.t("Quần áo", "Clothing"),
            Category::Other => self.t("Khác", "Other"),
        }
    }

    pub fn org_kind(self, kind: OrgKind) -> &'static str {
        match kind {
            OrgKind::Authority => self.t("Cơ quan chủ trì", "Programme authority"),
            OrgKind::Agency => self.t("Cơ quan, quỹ", "Agency or fund"),
            OrgKind::Commune => self.t("UBND xã", "Commune committee"),
            OrgKind::School => self.t("Trường học", "School"),
            OrgKind::Clinic => self.t("Trạm y tế", "Clinic"),
            OrgKind::DonorBusiness => self.t("Doanh nghiệp", "Business"),
            OrgKind::DonorOrganization => self.t("Tổ chức", "Organisation"),
            OrgKind::DonorIndividual => self.t("Cá nhân", "Individual"),
        }
    }

    /// How a donor who asked not to be named is shown, everywhere.
    pub fn anonymous(self) -> &'static str {
        self.t("Nhà hảo tâm ẩn danh", "Anonymous donor")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_use_each_languages_separators() {
        assert_eq!(Lang::Vi.int(1_234_567), "1.234.567");
        assert_eq!(Lang::En.int(1_234_567), "1,234,567");
        assert_eq!(Lang::En.int(999), "999");
        assert_eq!(Lang::Vi.int(1000), "1.000");
        assert_eq!(Lang::Vi.int(0), "0");
        assert_eq!(Lang::Vi.vnd(50_000), "50.000 ₫");
        assert_eq!(Lang::Vi.percent(12_345), "123,4 %");
        assert_eq!(Lang::En.percent(5), "0.0 %");
    }

    #[test]
    fn english_paths_live_under_en() {
        assert_eq!(Lang::Vi.href("/communes"), "/communes");
        assert_eq!(Lang::En.href("/communes"), "/en/communes");
        assert_eq!(Lang::En.href("/"), "/en");
    }
}
