//! The publish-time check of a rule: the parse tree walked for fields,
//! functions, types, size, cost and sensitive topics.

use super::*;

/// The check itself, on the thread [`check_with`] started.
pub(super) fn check_here(
    source: &str,
    taxonomy: &Taxonomy,
    policy: SensitivePolicy<'_>,
    guards: Guards,
) -> Result<CompiledRule, RuleError> {
    let err = |kind, byte: usize, message: String| RuleError {
        kind,
        position: Position::at(source, byte),
        message,
    };
    if guards.prescan {
        parse::prescan(source).map_err(|(kind, byte, message)| err(kind, byte, message))?;
    }
    let (expr, offsets) =
        parse::parse(source, guards.parser_depth).map_err(|f| err(f.kind, f.byte, f.message))?;
    if too_deep(&expr, 0).is_some() {
        return Err(RuleError {
            kind: RuleErrorKind::TooLarge,
            position: Position::at(source, 0),
            message: format!("the rule nests deeper than {MAX_DEPTH} levels; split long chains"),
        });
    }
    let mut checker = Checker {
        source,
        offsets: &offsets,
        taxonomy,
        policy,
        scopes: Vec::new(),
        nodes: 0,
        in_loop: false,
        topics: Vec::new(),
    };
    let (ty, cost) = checker.infer(&expr)?;
    if ty != Type::Bool {
        return Err(checker.error(
            RuleErrorKind::Type,
            &expr,
            format!("a rule must be a boolean condition, this one is a {ty}"),
        ));
    }
    if cost > MAX_COST {
        return Err(checker.error(
            RuleErrorKind::TooCostly,
            &expr,
            format!("the rule may cost up to {cost} steps per member, more than {MAX_COST}; use fewer or simpler macros"),
        ));
    }
    let mut clauses = Vec::new();
    let mut conjuncts = Vec::new();
    split_and(&expr, &mut conjuncts);
    for c in conjuncts {
        // Evaluated alone for "why"; a bare top-level rule is its own clause.
        let (start, stop) = offsets.span(c);
        let text = source.get(start..stop).unwrap_or("").trim().to_owned();
        let mut sub = Checker {
            source,
            offsets: &offsets,
            taxonomy,
            policy,
            scopes: Vec::new(),
            nodes: 0,
            in_loop: false,
            topics: Vec::new(),
        };
        let mut fields = Vec::new();
        collect_fields(c, &mut fields);
        sub.infer(c)?;
        clauses.push(Clause {
            text,
            fields,
            topics: sub.topics,
            expr: c.clone(),
        });
    }
    Ok(CompiledRule {
        source: source.to_owned(),
        topics: checker.topics,
        cost,
        clauses,
        expr,
    })
}

/// Whether the tree is deeper than [`MAX_DEPTH`] (a small frame per level, so it
/// runs before anything recursing with larger frames).
fn too_deep(e: &IdedExpr, depth: usize) -> Option<()> {
    if depth > MAX_DEPTH {
        return Some(());
    }
    let d = depth + 1;
    match &e.expr {
        Expr::Call(c) => c
            .target
            .iter()
            .map(|t| t.as_ref())
            .chain(c.args.iter())
            .find_map(|x| too_deep(x, d)),
        Expr::Select(s) => too_deep(&s.operand, d),
        Expr::List(l) => l.elements.iter().find_map(|x| too_deep(x, d)),
        Expr::Comprehension(c) => [
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ]
        .into_iter()
        .find_map(|x| too_deep(x, d)),
        Expr::Map(_) | Expr::Struct(_) => None,
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => None,
    }
}

pub(super) fn walk(e: &IdedExpr, f: &mut dyn FnMut(&IdedExpr)) {
    f(e);
    match &e.expr {
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                walk(t, f);
            }
            for a in &c.args {
                walk(a, f);
            }
        }
        Expr::Select(s) => walk(&s.operand, f),
        Expr::List(l) => {
            for x in &l.elements {
                walk(x, f);
            }
        }
        Expr::Comprehension(c) => {
            for x in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                walk(x, f);
            }
        }
        Expr::Map(m) => {
            for entry in &m.entries {
                if let EntryExpr::MapEntry(me) = &entry.expr {
                    walk(&me.key, f);
                    walk(&me.value, f);
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &s.entries {
                if let EntryExpr::StructField(sf) = &entry.expr {
                    walk(&sf.value, f);
                }
            }
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn split_and<'a>(e: &'a IdedExpr, out: &mut Vec<&'a IdedExpr>) {
    if let Expr::Call(c) = &e.expr {
        if c.func_name == "_&&_" && c.target.is_none() && c.args.len() == 2 {
            for a in &c.args {
                split_and(a, out);
            }
            return;
        }
    }
    out.push(e);
}

fn collect_fields(e: &IdedExpr, out: &mut Vec<&'static str>) {
    walk(e, &mut |n| {
        if let Expr::Ident(name) = &n.expr {
            if let Some(f) = FIELDS.iter().find(|f| f.name == name) {
                if !out.contains(&f.name) {
                    out.push(f.name);
                }
            }
        }
    });
}

struct Checker<'a> {
    source: &'a str,
    offsets: &'a Offsets,
    taxonomy: &'a Taxonomy,
    policy: SensitivePolicy<'a>,
    /// Comprehension variables in scope: name, type.
    scopes: Vec<(String, Type)>,
    nodes: usize,
    in_loop: bool,
    topics: Vec<TopicIdx>,
}

impl Checker<'_> {
    fn error(&self, kind: RuleErrorKind, at: &IdedExpr, message: String) -> RuleError {
        RuleError {
            kind,
            position: Position::at(self.source, self.offsets.start(at)),
            message: articles(&message),
        }
    }

    fn type_error(&self, at: &IdedExpr, message: String) -> RuleError {
        self.error(RuleErrorKind::Type, at, message)
    }

    /// The type of an expression and a bound on its evaluation cost.
    fn infer(&mut self, e: &IdedExpr) -> Result<(Type, u64), RuleError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.error(
                RuleErrorKind::TooLarge,
                e,
                format!("the rule has more than {MAX_NODES} expression nodes"),
            ));
        }
        match &e.expr {
            Expr::Literal(v) => self.literal(e, v).map(|t| (t, 1)),
            Expr::Ident(name) => {
                if let Some((_, t)) = self.scopes.iter().rev().find(|(n, _)| n == name) {
                    return Ok((t.clone(), 1));
                }
                match field_type(name) {
                    Some((t, _)) => Ok((t, 1)),
                    None => Err(self.error(
                        RuleErrorKind::UnknownField,
                        e,
                        format!(
                            "unknown field `{}`; a rule can read: {}",
                            clip(name),
                            field_names()
                        ),
                    )),
                }
            }
            Expr::Select(s) => {
                let what = match &s.operand.expr {
                    Expr::Ident(n) => format!("`{}.{}`", clip(n), clip(&s.field)),
                    _ => format!("`.{}`", clip(&s.field)),
                };
                Err(self.error(
                    RuleErrorKind::UnknownField,
                    e,
                    format!(
                        "unknown field {what}: context fields have no sub-fields; a rule can read: {}",
                        field_names()
                    ),
                ))
            }
            Expr::List(l) => {
                if l.elements.len() > MAX_LIST_LITERAL {
                    return Err(self.error(
                        RuleErrorKind::TooLarge,
                        e,
                        format!("list literals hold at most {MAX_LIST_LITERAL} elements"),
                    ));
                }
                let mut elem = Type::Dyn;
                let mut cost = 1;
                for x in &l.elements {
                    let (t, c) = self.infer(x)?;
                    cost += c;
                    elem = unify(&elem, &t).ok_or_else(|| {
                        self.type_error(x, format!("a list mixes {elem} and {t}"))
                    })?;
                }
                Ok((Type::List(Box::new(elem)), cost))
            }
            Expr::Map(_) | Expr::Struct(_) => Err(self.error(
                RuleErrorKind::FunctionNotAllowed,
                e,
                "map and message literals are not allowed in targeting rules".into(),
            )),
            Expr::Unspecified => {
                Err(self.error(RuleErrorKind::Syntax, e, "incomplete expression".into()))
            }
            Expr::Comprehension(c) => self.comprehension(e, c),
            Expr::Call(c) => self.call(e, c),
        }
    }

    fn literal(&mut self, e: &IdedExpr, v: &LiteralValue) -> Result<Type, RuleError> {
        Ok(match v {
            LiteralValue::Boolean(_) => Type::Bool,
            LiteralValue::Int(_) => Type::Int,
            LiteralValue::UInt(_) => Type::Uint,
            LiteralValue::Double(_) => Type::Double,
            LiteralValue::String(s) => {
                self.topic_literal(e, s.inner())?;
                Type::String
            }
            LiteralValue::Bytes(_) => {
                return Err(self.type_error(e, "bytes are not a value of any field".into()))
            }
            LiteralValue::Null => {
                return Err(self.type_error(
                    e,
                    "null is not a value of any field: unset strings are \"\"".into(),
                ))
            }
        })
    }

    /// A string literal that names a topic: refused when the topic is sensitive
    /// and the offer may not target it.
    fn topic_literal(&mut self, e: &IdedExpr, s: &str) -> Result<(), RuleError> {
        let Some(idx) = self.taxonomy.by_slug(s) else {
            return Ok(());
        };
        if !self.topics.contains(&idx) {
            self.topics.push(idx);
        }
        if let Some(category) = self.taxonomy.sensitive_category(idx) {
            let allowed = self.policy.explicit_consent && self.policy.offer_topics.contains(idx);
            if !allowed {
                let why = if self.policy.explicit_consent {
                    "list it in the offer's topics so members consent to it explicitly"
                } else {
                    "only offers flagged explicit_consent may target it, and only members who explicitly consented see them"
                };
                return Err(self.error(
                    RuleErrorKind::SensitiveTopic,
                    e,
                    format!(
                        "topic `{s}` touches the special category `{category}` (GDPR Art. 9): {why}"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn comprehension(
        &mut self,
        e: &IdedExpr,
        c: &ComprehensionExpr,
    ) -> Result<(Type, u64), RuleError> {
        if self.in_loop {
            return Err(RuleError {
                kind: RuleErrorKind::NestedMacro,
                position: Position::at(self.source, self.offsets.span(e).0),
                message:
                    "macros (all, exists, exists_one, map, filter) cannot be nested: their cost multiplies".into(),
            });
        }
        let (range_ty, range_cost) = self.infer(&c.iter_range)?;
        let Type::List(elem) = range_ty else {
            return Err(self.type_error(
                &c.iter_range,
                format!("macros run over lists, this is a {range_ty}"),
            ));
        };
        let bound = self.range_bound(&c.iter_range);
        let (accu_ty, init_cost) = self.infer(&c.accu_init)?;
        self.scopes.push((c.iter_var.clone(), (*elem).clone()));
        self.scopes.push((c.accu_var.clone(), accu_ty.clone()));
        self.in_loop = true;
        let step = self.infer(&c.loop_step);
        let cond = step.and_then(|s| self.infer(&c.loop_cond).map(|c| (s, c)));
        self.in_loop = false;
        let ((step_ty, step_cost), (cond_ty, cond_cost)) = match cond {
            Ok(v) => v,
            Err(err) => {
                self.scopes.truncate(self.scopes.len().saturating_sub(2));
                return Err(err);
            }
        };
        let accu = unify(&accu_ty, &step_ty);
        self.scopes.pop();
        let Some(accu) = accu else {
            self.scopes.pop();
            return Err(self.type_error(
                &c.loop_step,
                format!("the macro's body is a {step_ty}, expected {accu_ty}"),
            ));
        };
        if cond_ty != Type::Bool {
            self.scopes.pop();
            return Err(self.type_error(
                &c.loop_cond,
                "the macro's condition must be a boolean".into(),
            ));
        }
        self.scopes.push((c.accu_var.clone(), accu));
        let result = self.infer(&c.result);
        self.scopes.truncate(self.scopes.len().saturating_sub(2));
        let (result_ty, result_cost) = result?;
        let cost = range_cost
            .saturating_add(init_cost)
            .saturating_add(bound.saturating_mul(step_cost.saturating_add(cond_cost)))
            .saturating_add(result_cost);
        Ok((result_ty, cost))
    }

    /// The longest list an expression can be at evaluation time.
    fn range_bound(&self, e: &IdedExpr) -> u64 {
        match &e.expr {
            Expr::Ident(n) => field_type(n).map(|(_, b)| b).unwrap_or(MAX_INTERESTS),
            Expr::List(l) => l.elements.len() as u64,
            // Concatenations and anything else: the largest any list can be.
            _ => MAX_INTERESTS + MAX_CREDENTIALS,
        }
    }

    fn call(&mut self, e: &IdedExpr, c: &CallExpr) -> Result<(Type, u64), RuleError> {
        let name = c.func_name.as_str();
        if !FUNCTIONS.contains(&name) {
            return Err(self.error(
                RuleErrorKind::FunctionNotAllowed,
                e,
                format!(
                    "function `{}` is not allowed in targeting rules; use comparisons, in, size, contains, startsWith, endsWith, all, exists, exists_one",
                    clip(name)
                ),
            ));
        }
        let mut cost = 1u64;
        let target = match &c.target {
            Some(t) => {
                let (ty, tc) = self.infer(t)?;
                cost = cost.saturating_add(tc);
                Some(ty)
            }
            None => None,
        };
        let mut args = Vec::with_capacity(c.args.len());
        for a in &c.args {
            let (ty, ac) = self.infer(a)?;
            cost = cost.saturating_add(ac);
            args.push(ty);
        }
        let arg = |i: usize| c.args.get(i).unwrap_or(e);
        let ty = match (name, target.as_ref(), args.as_slice()) {
            ("_&&_" | "_||_", None, [a, b]) => {
                self.expect(arg(0), a, &Type::Bool)?;
                self.expect(arg(1), b, &Type::Bool)?;
                Type::Bool
            }
            ("!_" | "@not_strictly_false", None, [a]) => {
                self.expect(arg(0), a, &Type::Bool)?;
                Type::Bool
            }
            ("-_", None, [_]) | ("_-_" | "_*_" | "_/_" | "_%_", None, [_, _]) => {
                // Arithmetic can overflow or divide by zero inside the interpreter,
                // and targeting never needs it: compare values directly.
                return Err(self.error(
                        RuleErrorKind::FunctionNotAllowed,
                        e,
                        "arithmetic is not allowed in targeting rules; compare values directly (e.g. size(interests) >= 3)".into(),
                    ));
            }
            ("_==_" | "_!=_", None, [a, b]) => {
                if unify(a, b).is_none() {
                    return Err(self.type_error(e, format!("cannot compare a {a} with a {b}")));
                }
                Type::Bool
            }
            ("_<_" | "_<=_" | "_>_" | "_>=_", None, [a, b]) => {
                let ordered = matches!(a, Type::Int | Type::Uint | Type::Double | Type::String);
                if !ordered || a != b {
                    return Err(self.type_error(e, format!("cannot order a {a} against a {b}")));
                }
                Type::Bool
            }
            ("_+_", None, [a, b]) => {
                // Strings and lists only: numeric addition can overflow. The one
                // exception is `exists_one`'s own counter, bounded by its list.
                let counter = matches!(
                    c.args.first().map(|x| &x.expr),
                    Some(Expr::Ident(n)) if n.starts_with('@')
                );
                let ok = matches!(a, Type::String | Type::List(_)) || (counter && *a == Type::Int);
                match unify(a, b) {
                    Some(t) if ok => t,
                    _ => return Err(self.type_error(e, format!("cannot add a {a} and a {b}"))),
                }
            }
            ("@in", None, [a, b]) => match b {
                Type::List(elem) if unify(a, elem).is_some() => Type::Bool,
                Type::List(elem) => {
                    return Err(
                        self.type_error(e, format!("cannot look for a {a} in a list of {elem}"))
                    )
                }
                _ => {
                    return Err(self.type_error(
                        arg(1),
                        format!("`in` needs a list on its right, this is a {b}"),
                    ))
                }
            },
            ("_?_:_", None, [cond, a, b]) => {
                self.expect(arg(0), cond, &Type::Bool)?;
                unify(a, b).ok_or_else(|| {
                    self.type_error(e, format!("the branches are a {a} and a {b}"))
                })?
            }
            ("_[_]", None, [list, idx]) => match list {
                Type::List(elem) => {
                    self.expect(arg(1), idx, &Type::Int)?;
                    (**elem).clone()
                }
                _ => return Err(self.type_error(arg(0), format!("cannot index a {list}"))),
            },
            ("size", None, [a]) | ("size", Some(a), []) => {
                if !matches!(a, Type::String | Type::List(_)) {
                    return Err(
                        self.type_error(e, format!("size() takes a string or a list, not a {a}"))
                    );
                }
                Type::Int
            }
            ("contains" | "startsWith" | "endsWith", Some(t), [a]) => {
                self.expect(c.target.as_deref().unwrap_or(e), t, &Type::String)?;
                self.expect(arg(0), a, &Type::String)?;
                Type::Bool
            }
            _ => {
                return Err(self.type_error(
                    e,
                    format!(
                        "`{}` is called with the wrong number or kind of arguments",
                        display_name(name)
                    ),
                ))
            }
        };
        Ok((ty, cost))
    }

    fn expect(&self, at: &IdedExpr, got: &Type, want: &Type) -> Result<(), RuleError> {
        if unify(got, want).is_some() {
            Ok(())
        } else {
            Err(self.type_error(at, format!("expected a {want}, found a {got}")))
        }
    }
}

/// "a int" → "an int" in messages built from type names.
fn articles(m: &str) -> String {
    m.replace(" a int", " an int")
        .replace(" a uint", " an uint")
}

fn display_name(f: &str) -> &str {
    match f {
        "_&&_" => "&&",
        "_||_" => "||",
        "!_" => "!",
        "_==_" => "==",
        "_!=_" => "!=",
        "@in" => "in",
        other => other,
    }
}

fn unify(a: &Type, b: &Type) -> Option<Type> {
    match (a, b) {
        (Type::Dyn, t) | (t, Type::Dyn) => Some(t.clone()),
        (Type::List(x), Type::List(y)) => unify(x, y).map(|t| Type::List(Box::new(t))),
        (x, y) if x == y => Some(x.clone()),
        _ => None,
    }
}

fn field_names() -> String {
    FIELDS.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
}

/// Names from the rule are echoed in errors; keep them short.
fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}
