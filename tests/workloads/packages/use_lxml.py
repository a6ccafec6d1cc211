"""python3-lxml: parsing, XPath, XSLT, objectify, HTML and the element classes of
lxml.etree's Cython extension."""
import io

from lxml import etree, html, objectify

doc = etree.fromstring(b"<root><a n='1'>x</a><a n='2'>y</a><!-- c --><b/></root>")
print([e.get("n") for e in doc.iterfind("a")], doc.xpath("string(/root/a[2])"), len(doc))
xslt = etree.XSLT(etree.XML(
    b"<xsl:stylesheet version='1.0' xmlns:xsl='http://www.w3.org/1999/XSL/Transform'>"
    b"<xsl:template match='/'><out><xsl:value-of select='count(//a)'/></out></xsl:template>"
    b"</xsl:stylesheet>"))
print(str(xslt(doc)).strip())
tree = etree.parse(io.BytesIO(b"<?xml version='1.0'?><r><i>1</i><i>2</i></r>"))
print(etree.tostring(tree, pretty_print=False).decode(), tree.getroot().tag)
obj = objectify.fromstring("<r><price>3.5</price><n>4</n></r>")
print(obj.price * 2, obj.n + 1)
page = html.fromstring("<html><body><p class='k'>hello <b>world</b></p></body></html>")
print(page.xpath("//p[@class='k']")[0].text_content())
for event, element in etree.iterparse(io.BytesIO(b"<r><x/><y/></r>"), events=("start", "end")):
    print(event, element.tag, end="; ")
print()
try:
    etree.fromstring(b"<broken>")
except etree.XMLSyntaxError as e:
    print("syntax error", type(e).__name__)

# Cython's opt-out of isolation: one module object per process, so a second import
# gets the same object and another interpreter gets an ImportError.
import importlib, sys, _testcapi
first = sys.modules.pop("lxml.etree")
print(importlib.import_module("lxml.etree") is first, _testcapi.run_in_subinterp("import lxml.etree"))
