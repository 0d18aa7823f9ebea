package message

import (
	"strings"
	"testing"
)

// message4K is a typical single-part message of about 4 KiB.
var message4K = func() []byte {
	var b strings.Builder
	b.WriteString("Return-Path: <alice@example.org>\r\n" +
		"Delivered-To: bob@example.com\r\n" +
		"Received: from mx.example.org (mx.example.org [192.0.2.1])\r\n\tby mail.example.com (Postfix) with ESMTPS id 4F2A1C0042\r\n\tfor <bob@example.com>; Mon, 2 Jan 2006 15:04:05 -0700 (MST)\r\n" +
		"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=2024;\r\n\th=from:to:subject:date:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n\tb=dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSbav+yuU4zGeeruD00lszZVoG4ZHRNiYzR\r\n" +
		"Date: Mon, 2 Jan 2006 15:04:05 -0700\r\n" +
		"From: Alice Example <alice@example.org>\r\n" +
		"To: Bob <bob@example.com>, carol@example.com\r\n" +
		"Cc: \"Doe, John\" <john.doe@example.net>\r\n" +
		"Subject: =?UTF-8?Q?Quarterly_numbers_=E2=80=94_please_review?=\r\n" +
		"Message-ID: <1234.5678@example.org>\r\n" +
		"In-Reply-To: <1000@example.com>\r\n" +
		"References: <999@example.com> <1000@example.com>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8; format=flowed\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n\r\n")
	for b.Len() < 4096 {
		b.WriteString("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n")
	}
	return []byte(b.String())
}()

// multipartMessage has a text part, an HTML alternative and a base64
// attachment (about 12 KiB).
var multipartMessage = func() []byte {
	var b strings.Builder
	b.WriteString("From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: Report\r\n" +
		"Date: Wed, 4 Jan 2006 12:00:00 +0100\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"=_outer_0123456789\"\r\n\r\n" +
		"This is a multi-part message in MIME format.\r\n" +
		"--=_outer_0123456789\r\nContent-Type: multipart/alternative; boundary=\"=_inner_0123456789\"\r\n\r\n" +
		"--=_inner_0123456789\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	for i := 0; i < 20; i++ {
		b.WriteString("Gr=C3=BC=C3=9Fe, the numbers are attached. Lorem ipsum dolor sit amet.\r\n")
	}
	b.WriteString("--=_inner_0123456789\r\nContent-Type: text/html; charset=utf-8\r\n\r\n")
	for i := 0; i < 20; i++ {
		b.WriteString("<p>Gr&uuml;&szlig;e, the numbers are attached. Lorem ipsum dolor sit amet.</p>\r\n")
	}
	b.WriteString("--=_inner_0123456789--\r\n\r\n--=_outer_0123456789\r\n" +
		"Content-Type: application/pdf; name=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename=\"report.pdf\"\r\n\r\n")
	for i := 0; i < 100; i++ {
		b.WriteString("JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSL0ZpbHRlci9GbGF0ZUQK\r\n")
	}
	b.WriteString("--=_outer_0123456789--\r\n")
	return []byte(b.String())
}()

func BenchmarkParse4K(b *testing.B) {
	b.SetBytes(int64(len(message4K)))
	b.ReportAllocs()
	for b.Loop() {
		Parse(message4K)
	}
}

func BenchmarkParseMultipart(b *testing.B) {
	b.SetBytes(int64(len(multipartMessage)))
	b.ReportAllocs()
	for b.Loop() {
		Parse(multipartMessage)
	}
}

func BenchmarkEnvelope(b *testing.B) {
	m := Parse(message4K)
	b.ReportAllocs()
	for b.Loop() {
		m.Envelope()
	}
}

func BenchmarkBodyContains(b *testing.B) {
	m := Parse(message4K)
	b.SetBytes(int64(len(message4K)))
	b.ReportAllocs()
	for b.Loop() {
		if m.BodyContains("not in the text") {
			b.Fatal("false match")
		}
	}
}

func BenchmarkBodyContainsMultipart(b *testing.B) {
	m := Parse(multipartMessage)
	b.SetBytes(int64(len(multipartMessage)))
	b.ReportAllocs()
	for b.Loop() {
		if m.BodyContains("not in the text") {
			b.Fatal("false match")
		}
	}
}

func BenchmarkMarshalStructure(b *testing.B) {
	m := Parse(multipartMessage)
	b.ReportAllocs()
	for b.Loop() {
		m.MarshalStructure()
	}
}

func BenchmarkUnmarshalStructure(b *testing.B) {
	data := Parse(multipartMessage).MarshalStructure()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := UnmarshalStructure(data); err != nil {
			b.Fatal(err)
		}
	}
}
